"""The rule-based dialogue engine and the example shop assistant: every rule, slots and
templates, contexts, the fallback, the hybrid with a model, and malformed rules files."""

import json

import pytest

from keras_nlp_app.cli import main
from keras_nlp_app.errors import UserError
from keras_nlp_app.rulebot import load_rules

SHOP = "configs/shop_assistant_rules.yaml"


@pytest.fixture
def bot():
    return load_rules(SHOP)


@pytest.mark.parametrize("message, intent, says", [
    ("Hello!", "greeting", "How can I help"),
    ("Good evening", "greeting", "Welcome"),
    ("What are your opening hours?", "opening_hours", "Monday to Saturday"),
    ("When do you close today?", "opening_hours", "closed on Sundays"),
    ("Where is my order?", "order_status", "order number"),
    ("What's the status of order #48213?", "order_status_with_number", "Order 48213 has shipped"),
    ("Can I speak to a human please", "human", "put you through to a colleague."),
    ("thank you, bye", "thanks", "nice day"),
    ("What is the meaning of life?", None, "Sorry, I did not get that"),
])
def test_every_rule_of_the_shop_assistant(bot, message, intent, says):
    turn = bot.answer(message)
    assert turn.intent == intent and says in turn.text


def test_a_context_set_by_one_rule_lets_another_take_the_number_and_remember_it(bot):
    assert bot.answer("track my order").intent == "order_status"
    turn = bot.answer("it is 7781234")
    assert turn.intent == "order_number" and turn.slots == {"order": "7781234"}
    assert "7781234" in turn.text
    assert bot.answer("7781234").intent == "order_status_with_number"  # context was cleared
    assert "about order 7781234" in bot.answer("get me an agent").text  # the slot is remembered
    bot.reset()
    assert "order" not in bot.answer("get me an agent").text.split("colleague")[1]


def test_reply_replays_the_conversation_so_far_statelessly(bot):
    history = ["hi", "where is my order", "55555"]
    assert bot.reply(history).text == load_rules(SHOP).reply(history).text
    assert "55555" in bot.reply(history).text and bot.reply(["55555"]).intent is not None


def test_the_hybrid_answers_with_rules_first_and_the_model_otherwise(monkeypatch):
    from keras_nlp_app import inference

    class Info:
        task_hooks = type("Hooks", (), {"converses": True})()
        run_config = type("Cfg", (), {"model": type("M", (), {"beam_size": 2})(),
                                      "data": type("D", (), {"context_turns": 2})()})()

    monkeypatch.setattr(inference, "_as_target", lambda target: Info())
    monkeypatch.setattr(inference, "load_generator",
                        lambda info: lambda sources, **settings: ["(model) " + s for s in sources])
    said = []
    inference.chat("model", ["hello", "tell me a joke"], rules=load_rules(SHOP), write=said.append)
    assert said[0].startswith("Hello!") and said[1].startswith("(model)")


def test_knlp_chat_takes_a_rules_file(monkeypatch, capsys):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\nwhere is my order\n12345\n"))
    assert main(["chat", SHOP]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "12345" in lines[2]


@pytest.mark.parametrize("content, message", [
    ("intents: [\n  - name: a\n    patterns: ['x'\n", r"rules\.yaml:\d+: not valid YAML"),
    ("intents: []\n", "non-empty 'intents' list"),
    ("intents:\n  - name: a\n    patterns: ['(']\n    responses: [x]\n", "not a valid regular"),
    ("intents:\n  - name: a\n    patterns: ['x']\n    responses: ['{who}']\n", "slot 'who'"),
    ("intents:\n  - name: a\n    pattern: ['x']\n    responses: [x]\n", "unknown key 'pattern'"),
    ("intents:\n  - name: a\n    patterns: ['x']\n", "at least one pattern and one response"),
    ("intents:\n  - name: a\n    patterns: [x]\n    responses: [y]\n  - name: a\n"
     "    patterns: [x]\n    responses: [y]\n", "defined twice"),
])
def test_a_malformed_rules_file_is_one_clear_error(tmp_path, capsys, content, message):
    import re

    path = tmp_path / "rules.yaml"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_rules(str(path))
    assert main(["chat", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and re.search(message, error)


def test_knlp_serve_answers_a_conversation_statelessly_over_the_rest_api():
    from fastapi.testclient import TestClient

    from keras_nlp_app.serving.app import create_app, parse_model_arguments

    models = parse_model_arguments([SHOP])
    assert models == {"shop_assistant_rules": SHOP}
    with TestClient(create_app(models)) as client:
        url = "/v1/models/shop_assistant_rules"
        assert client.get(url).json()["model_version_status"][0]["state"] == "AVAILABLE"
        signature = client.get(f"{url}/metadata").json()["metadata"]["signature_def"]
        assert set(signature["signature_def"]["serving_default"]["outputs"]) == {
            "reply", "intent", "slots"}
        body = {"instances": [{"messages": ["hi", "where is my order", "12345"]},
                              {"messages": ["12345"]}, {"messages": []}]}
        first, second, empty = client.post(f"{url}:predict", json=body).json()["predictions"]
        assert first["intent"] == "order_number" and "12345" in first["reply"]
        assert json.loads(first["slots"]) == {"order": "12345"}
        # the same last message without the conversation before it: no awaiting context
        assert second["intent"] != "order_number"
        assert empty["intent"] == "" and empty["reply"]
        bad = client.post(f"{url}:predict", json={"instances": [{"messages": "hi"}]})
        assert bad.status_code == 400 and "list" in bad.json()["error"]
