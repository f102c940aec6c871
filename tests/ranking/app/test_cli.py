"""The front door of the ``marginrank`` command: a help that loads no heavy library, help text
on every option in plain words, --version, one line for a missing extra, progress in logs, the
demo's closing hints working as printed, and validate-config's checks and plain YAML errors."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from objectives.config import parse_config
from ranking.app import cli
from ranking.app.progress import Progress
from tests.conftest import ROOT

MARGINRANK = Path(sys.executable).with_name("marginrank")
#: Libraries that take seconds to import; `marginrank --help` must load none of them.
HEAVY = ("numpy", "pandas", "scipy", "cvxpy", "xgboost", "numba", "pydantic", "duckdb", "dask",
         "fastapi", "uvicorn", "lifetimes", "matplotlib", "pyarrow", "tqdm", "ruamel")
SPHINX = re.compile(r"``|:(?:mod|func|class|meth|data|attr|exc):`")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_help_loads_no_heavy_library() -> None:
    result = run_python(
        "import sys\nfrom ranking.app.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert "usage: marginrank" in result.stdout and "COMMAND" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "LOADED []"


def commands() -> list[str]:
    top = cli._parser(None)
    return list(_subparsers(top).choices)


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _parsers(parser: argparse.ArgumentParser,
             path: str) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _parsers(child, f"{path} {name}")
    return found


def _options(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _options(child, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            found.append((f"{path} {'/'.join(action.option_strings) or action.dest}", action))
    return found


@pytest.mark.parametrize("command", commands())
def test_every_option_has_help_in_plain_words(command: str) -> None:
    parser = _subparsers(cli._parser(command)).choices[command]
    options = _options(parser, command)
    assert options or command == "bench", command
    for where, action in options:
        assert action.help and action.help.strip(), f"{where}: no help text"
        assert not SPHINX.search(action.help), f"{where}: markup in {action.help!r}"
    for name, nested in _parsers(parser, command):
        assert not SPHINX.search(nested.format_help()), f"{name}: markup in its help"


def test_every_option_of_every_command_has_plain_help() -> None:
    """The whole tree at once, nested groups included: every option and every command or
    action listed under a group has help text, with no markup at all (no backquotes, no
    Sphinx roles)."""
    top = cli._parser()
    checked = 0
    for name, parser in _parsers(top, "marginrank"):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                texts = [(f"{name} {choice.dest}", choice.help)
                         for choice in action._choices_actions]
                assert len(texts) == len(action.choices), name
            elif not isinstance(action, argparse._HelpAction):
                texts = [(f"{name} {'/'.join(action.option_strings) or action.dest}",
                          action.help)]
            else:
                continue
            for where, text in texts:
                assert text and text.strip(), f"{where}: no help text"
                assert "`" not in text and not SPHINX.search(text), f"{where}: {text!r}"
                checked += 1
    assert checked > 100  # every command's options were walked, not just the top level


def test_every_command_has_one_shape() -> None:
    """Each command module registers its parser(s) through ``add_arguments(subparsers)``, and
    every leaf runs a ``run`` function (``run_<action>`` for a module's sibling actions) of a
    command module of ranking.app, which returns the exit code."""
    import inspect

    from ranking.app import experiment_command

    modules = (*cli.COMMANDS, *experiment_command.ACTIONS)
    for module in modules:
        assert module.__name__.startswith("ranking.app.") and module.__name__.endswith(
            "_command"), module.__name__
        assert list(inspect.signature(module.add_arguments).parameters) == ["subparsers"]
    leaves = [(name, parser) for name, parser in _parsers(cli._parser(), "marginrank")
              if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)]
    assert len(leaves) >= 18
    for name, parser in leaves:
        run = parser.get_default("run")
        assert run is not None, f"{name}: no run"
        assert sys.modules[run.__module__] in modules, (name, run.__module__)
        assert run.__name__ == "run" or run.__name__.startswith("run_"), (name, run.__name__)
        assert list(inspect.signature(run).parameters) == ["args"], name
        assert inspect.signature(run).return_annotation in (int, "int"), name


def test_top_level_help_is_plain() -> None:
    text = cli._parser(None).format_help()
    assert not SPHINX.search(text)
    assert "marginrank demo" in text


def test_version() -> None:
    result = subprocess.run([str(MARGINRANK), "--version"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0
    assert result.stdout.strip() == f"marginrank {version('marginrank')}"


def test_a_missing_extra_is_one_line_naming_it(tmp_path: Path) -> None:
    # sys.modules[name] = None is Python's own way to make an import fail (ModuleNotFoundError).
    result = run_python(
        "import sys\nsys.modules['fastapi'] = None\nsys.modules['uvicorn'] = None\n"
        "from ranking.app.cli import main\n"
        f"sys.exit(main(['serve', '--bundle', {str(tmp_path)!r}]))")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "marginrank: error: the service needs the 'service' extra: "
        "pip install 'marginrank[service]'"]


def test_every_extra_named_exists() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for module, (extra, _) in cli.EXTRAS.items():
        assert extra in extras, module
        # a requirement's name, or one of its own extras (dask[distributed])
        names = {w.replace("-", "_").lower() for r in extras[extra]
                 for w in re.findall(r"[A-Za-z][\w.-]*", re.split(r"[<>=]", r)[0])}
        assert module in names, (module, extra)


def test_progress_writes_log_lines_when_stderr_is_not_a_terminal(capsys) -> None:  # noqa: ANN001
    assert Progress().log  # pytest captures stderr: not a terminal
    assert not Progress(enabled=False).enabled
    progress = Progress(interval=0.05)
    with progress.stage("computing features"):
        assert list(progress.bar(range(20), "queries")) == list(range(20))
        deadline = time.monotonic() + 30  # the heartbeat thread writes within its interval
        seen = ""
        while "running for" not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
            seen += capsys.readouterr().err
    err = seen + capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0].endswith("computing features: started")
    assert any(re.search(r"computing features: queries 2/20 \(10%\), [\d.]+ s", x) for x in lines)
    assert any(line.endswith("computing features: queries 20/20 (100%), "
                             f"{line.split(', ')[-1]}") for line in lines)
    assert any(re.search(r"computing features: running for \d+ s", x) for x in lines)
    assert re.search(r"computing features: done in [\d.]+ s$", lines[-1])
    assert all(re.match(r"marginrank \[ *[\d.]+ s\] ", x) for x in lines)
    assert set(progress.timings) == {"computing features"}


def test_silent_progress_prints_nothing(capsys) -> None:  # noqa: ANN001
    progress = Progress(enabled=False)
    with progress.stage("x"):
        list(progress.bar(range(3), "y"))
        progress.note("z")
    assert capsys.readouterr() == ("", "")


def test_demo_hints_work_as_printed(small_world: Path, tmp_path: Path) -> None:
    world = tmp_path / "world"
    shutil.copytree(small_world, world)
    shutil.copyfile(ROOT / "data" / "demo" / "weights.yaml", world / "weights.yaml")
    run = subprocess.run([str(MARGINRANK), "demo", "--data", str(world), "--out", "demo"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr
    # Not a terminal: progress came as log lines, with stages and their durations.
    assert re.search(r"training LambdaMART: done in [\d.]+ s", run.stderr)
    hints = run.stdout[run.stdout.index("\ntry:"):].replace("try:", "", 1).strip().splitlines()
    assert len(hints) == 2 and hints[0].startswith(str(MARGINRANK))
    search = subprocess.run(hints[0], shell=True, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert search.returncode == 0, search.stderr
    assert re.search(r"^\s+1\s+\S+\s+", search.stdout, flags=re.M)  # a ranked first result
    # The served file is the merchandiser's file with the tuned numbers, comments kept ...
    served = (tmp_path / "demo" / "bundle" / "weights.yaml").read_text()
    source = (world / "weights.yaml").read_text()
    comments = [x.strip() for x in source.splitlines() if x.strip().startswith("#")]
    assert all(c in served for c in comments)
    tuned = json.loads((tmp_path / "demo" / "report.json").read_text())["tuned_weights"]
    assert parse_config(served).weights.model_dump() == pytest.approx(tuned, rel=1e-3, abs=1e-6)
    assert "served weights: demo/bundle/weights.yaml" in run.stdout
    # ... so previewing it unchanged against its bundle changes nothing.
    preview = subprocess.run(hints[1], shell=True, cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
    assert preview.returncode == 0, preview.stderr
    assert "Queries whose top 10 changes: 0 of" in preview.stdout


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_config_refuses_a_category_rule_that_matches_nothing(
        tmp_path: Path, capsys) -> None:  # noqa: ANN001
    catalog = ROOT / "data" / "demo" / "catalog.csv"
    typo = write(tmp_path / "w.yaml", 'version: 1\ncategories:\n  "Outdoors/Patio": '
                 '{weights: {inventory: 0.3}}\n  "Toolz/Power": {weights: {margin: 0.1}}\n')
    assert cli.main(["validate-config", str(typo), "--catalog", str(catalog)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"marginrank: error: {typo}:4: categories.Toolz/Power: matches no product's category; "
        "did you mean 'Tools/Power Tools'?"]
    good = write(tmp_path / "g.yaml", 'version: 1\nweights: {margin: 0.3, clv: 0.1}\n'
                 'categories:\n  "Tools/Power Tools": {weights: {margin: 0.1}}\n')
    assert cli.main(["validate-config", str(good), "--catalog", str(catalog)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{good}: OK (weights: margin 0.3, clv 0.1, returns ")
    assert "category rules: 1" in out and "not checked" not in out
    assert cli.main(["validate-config", str(typo)]) == 0  # without a catalog it cannot know
    assert "category rules were not checked" in capsys.readouterr().out


@pytest.mark.parametrize(("text", "words"), [
    ("version: 1\nweights:\n  margin: 0.3\n clv: 0.1\n",
     "w.yaml:4: weights: line 4 is indented by 1 space, which lines up with no key above it"),
    ("version: 1\nweights:\n  margin: 0.3\n    clv: 0.1\n",
     "w.yaml:4: weights: line 4 is indented under 'margin', which already has a value"),
    ("version: 1\nweights:\n\tmargin: 0.3\n",
     "w.yaml:3: weights: line 3 is indented with a tab; YAML indents with spaces only"),
    ("version: 1\nweights: margin: 0.3\n",
     "w.yaml:2: line 2 has a second 'key:' after the first one"),
    ("version: 1\nguardrails:\n  max_ndcg_drop: 0.002\n  - x\n",
     "w.yaml:4: guardrails: line 4 starts a list item ('- ') among 'key: value' lines"),
])
def test_yaml_syntax_errors_in_plain_words(tmp_path: Path, capsys, text: str,  # noqa: ANN001
                                           words: str) -> None:
    path = write(tmp_path / "w.yaml", text)
    assert cli.main(["validate-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"marginrank: error: {tmp_path / words}"), err
    assert "; YAML error: " in err  # the parser's own words follow


def test_public_surface_resolves_lazily() -> None:
    import objectives
    import ranking

    for package in (ranking, objectives):
        assert package.__all__ == sorted(package._EXPORTS) == dir(package)
        for name in package.__all__:
            assert getattr(package, name).__name__ == name
    result = run_python(
        "import sys\nfrom ranking import Ranker, SearchResult, build\n"
        "from objectives import load_config, WeightsConfig, ConfigError, tune_weights\n"
        "import ranking, objectives\n"
        "print(ranking.Ranker is Ranker, objectives.ConfigError is ConfigError)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
    cheap = run_python(f"import sys, ranking, objectives\n"
                       f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert cheap.stdout.strip() == "[]", cheap.stdout + cheap.stderr


def test_bench_quality_help_is_plain(monkeypatch, capsys) -> None:  # noqa: ANN001
    from ranking.app.bench_command import load_script

    with pytest.raises(SystemExit):
        cli.main(["bench", "quality", "--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: marginrank bench quality") and not SPHINX.search(text)
    parsers: list[argparse.ArgumentParser] = []

    def keep(self: argparse.ArgumentParser, *_: object, **__: object) -> None:
        parsers.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", keep)
    with pytest.raises(SystemExit):
        load_script("quality").parse_args([])
    for where, action in _options(parsers[0], "bench quality"):
        assert action.help and action.help.strip(), f"{where}: no help text"
        assert not SPHINX.search(action.help), f"{where}: markup in {action.help!r}"


def test_a_loop_outside_any_stage_is_logged_as_its_own_stage(capsys) -> None:  # noqa: ANN001
    progress = Progress(log=True)
    assert list(progress.bar(iter(range(4)), "features", total=4)) == [0, 1, 2, 3]
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("] features: started")
    assert lines[1].endswith("] features 1/4 (25%), " + lines[1].split(", ")[-1])
    assert re.search(r"\] features: done in [\d.]+ s$", lines[-1])
    assert set(progress.timings) == {"features"}


def test_allocate_offers_the_bandits_rewards() -> None:
    """``experiment allocate --reward`` lists the rewards without importing the bandit (for a
    fast --help): the two lists stay the same."""
    from ranking.app import allocate_command
    from ranking.experiments import bandit

    assert allocate_command._REWARDS == bandit.REWARDS
