"""Regenerates configs/base.yaml from the config dataclasses and their inline comments.

Run after changing keras_nlp_app/config.py: .venv/bin/python scripts/gen_base_config.py
(tests/test_config.py checks that base.yaml equals the defaults and comments every key).
"""
import dataclasses
import re

import yaml

from keras_nlp_app import config as C

src=open('keras_nlp_app/config.py').read()
comments={}
cls=None
for line in src.splitlines():
    m=re.match(r'class (\w+)Config|class (Config)\b', line)
    if m:
        cls=line
    m=re.match(r'    (\w+): .*?= .*?  # (.*)$', line)
    if m and cls:
        comments[(cls, m.group(1))]=m.group(2)
out=["# Every config key with its default and meaning. Recipes name only what they change;",
     "# `knlp train CONFIG --set section.key=value` overrides one key.",""]
def section(obj, clsname, indent):
    for f in dataclasses.fields(obj):
        v=getattr(obj,f.name)
        if dataclasses.is_dataclass(v):
            out.append(" "*indent+f"{f.name}:")
            section(v, [l for l in src.splitlines() if l.startswith(f"class {type(v).__name__}")][0], indent+2)
            continue
        dumped=yaml.safe_dump({f.name:v}, default_flow_style=True, width=1000).strip()[1:-1]
        c=comments.get((clsname,f.name),"")
        assert c, f.name
        out.append(" "*indent+f"{dumped}  # {c}")
section(C.Config(), "class Config:", 0)
open('configs/base.yaml','w').write("\n".join(out)+"\n")
