import json
import os
import subprocess
import sys

from keras_nlp_app.cli import main


def run_knlp(*args):
    return subprocess.run([sys.executable, "-m", "keras_nlp_app", *args], capture_output=True,
                          text=True, timeout=120)


def test_help_answers_without_importing_tensorflow():
    code = ("import sys; from keras_nlp_app.cli import build_parser; build_parser().format_help(); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    result = run_knlp("--help")
    assert result.returncode == 0 and "quickstart" in result.stdout


def test_bad_input_exits_2_with_one_line_and_no_traceback():
    result = run_knlp("train", "configs/missing.yaml")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["knlp: error: configs/missing.yaml: config file not found"]
    result = run_knlp("train", "configs/sst2_lstm.yaml", "--set", "train.epoch=1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown config key train.epoch" in result.stderr


def test_evaluate_bad_file_and_missing_model_exit_2(trained_run, tmp_path, capsys):
    bad = tmp_path / "latin1.tsv"
    bad.write_bytes(b"sentence\tlabel\nun caf\xe9\t1\n")
    assert main(["evaluate", trained_run, "--data", str(bad), "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{bad}:2: not valid UTF-8" in err[0]
    assert main(["predict", str(tmp_path / "nope"), "hello"]) == 2


def test_evaluate_and_predict_print_json(trained_run, easy_files, tmp_path, capsys):
    assert main(["evaluate", trained_run, "--data", easy_files[1], "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"task", "examples", "accuracy", "macro_f1", "per_class"} <= set(report)
    inputs = tmp_path / "texts.txt"
    inputs.write_text("a really great story\n")
    assert main(["predict", trained_run, "an awful film", "--input", str(inputs), "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)["predictions"]
    assert [p["label"] for p in predictions] == ["0", "1"]
    assert abs(sum(predictions[0]["probabilities"].values()) - 1) < 1e-5
    assert main(["evaluate", trained_run]) == 0
    assert "confusion matrix" in capsys.readouterr().out


def test_bad_evaluation_data_is_refused_before_tensorflow_starts(trained_run, tmp_path):
    bad = tmp_path / "words.tsv"
    bad.write_text("sentence\tlabel\na fine film\tpositive\n")
    result = run_knlp("evaluate", trained_run, "--data", str(bad), "--json")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"knlp: error: {bad}:2: unknown label 'positive'; this model knows 0, 1"]


def test_tensorflow_verbs_keep_native_log_lines_off_stderr(trained_run):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run([sys.executable, "-m", "keras_nlp_app", "evaluate", trained_run, "--json"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert quiet.returncode == 0 and json.loads(quiet.stdout)["task"] == "classification"
    assert quiet.stderr == ""


def test_the_native_log_filter_drops_absl_lines_and_keeps_everything_else():
    code = (
        "import os, sys\n"
        "from keras_nlp_app.utils.native_logs import hide_native_logs\n"
        "hide_native_logs()\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1796160782.008016    2218 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "os.write(2, b'E0000 00:00:1796160786.783166    2218 cuda_platform.cc:52] failed call to cuInit\\n')\n"
        "print('a python warning', file=sys.stderr)\n"
        "os.write(2, b'a native line of our own\\n')\n"
        "raise SystemExit(3)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stderr.splitlines() == ["a python warning", "a native line of our own"]
