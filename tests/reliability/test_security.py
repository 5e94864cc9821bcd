"""What a hostile file or request cannot do: no unpickling or unsafe YAML anywhere in the
package, and no model name or version that reaches outside the served folders."""

import ast
import os

import keras_nlp_app

PACKAGE = os.path.dirname(keras_nlp_app.__file__)


def test_no_pickle_and_only_safe_yaml_in_the_package():
    found = []
    for folder, _, files in os.walk(PACKAGE):
        for name in (n for n in files if n.endswith(".py")):
            path = os.path.join(folder, name)
            tree = ast.parse(open(path, encoding="utf-8").read())
            for node in ast.walk(tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    modules = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                    if any(m.split(".")[0] in ("pickle", "dill", "cloudpickle", "joblib")
                           for m in modules):
                        found.append(f"{path}: imports a pickle module")
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    if node.func.attr in ("load", "load_all", "unsafe_load") and \
                            getattr(node.func.value, "id", "") == "yaml":
                        found.append(f"{path}:{node.lineno}: yaml.{node.func.attr}")
                    for keyword in node.keywords:
                        if keyword.arg == "allow_pickle" and getattr(keyword.value, "value", 0):
                            found.append(f"{path}:{node.lineno}: allow_pickle=True")
    assert not found, found


def test_model_names_and_versions_cannot_leave_the_served_folders(exported_versions):
    from fastapi.testclient import TestClient

    from keras_nlp_app.serving.app import create_app

    with TestClient(create_app({"m": exported_versions[0]})) as client:
        for path in ("/v1/models/..%2Fm", "/v1/models/%2Fetc%2Fpasswd",
                     "/v1/models/m/versions/-1", "/v1/models/m/versions/1%2F..%2F..",
                     "/v1/models/..%2F..%2Fetc/metadata"):
            assert client.get(path).status_code in (404, 405), path
            assert client.post(path + ":predict", json={"instances": ["a"]}).status_code == 404
