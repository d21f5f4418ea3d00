"""The README stays true: its config reference is the schema's, and its commands exist."""

from morphcpt.config_reference import readme_section, reference_markdown


def test_readme_config_reference_is_generated_from_the_current_schema(repo_root):
    readme = (repo_root / "README.md").read_text()
    assert readme_section(readme) == reference_markdown(), "run: morphcpt config-reference --write README.md"


def test_readme_quickstart_commands_exist(repo_root):
    readme = (repo_root / "README.md").read_text()
    makefile = (repo_root / "Makefile").read_text()
    for command in ("make demo", "make test", "morphcpt install-profile", "snakemake --profile slurm all_llama", "morphcpt plan all_llama --full"):
        assert command in readme
    assert "\ndemo: setup" in makefile and "\ntest: setup" in makefile and "\nprofile: setup" in makefile


# -- every command the README shows runs as written (parsed and checked, not executed) ---------------

import os  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

_PROGRAMS = ("make", "morphcpt", "snakemake", "bash", "python", "scripts/", ".venv/bin/", "CPU_SMOKE=")


def readme_commands(text: str) -> list[str]:
    """Shell commands the README shows: lines of ```bash blocks, `$ ` lines of other blocks, and inline
    code spans that start with a program this project ships or drives. Synopses (`[--opt]`,
    `{a,b}`, `...`) and placeholders in angle brackets are left out: they are not runnable as written."""
    commands = []
    for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
        for line in body.splitlines():
            line = line.strip()
            if lang != "bash":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            line = re.split(r"\s+#\s", " " + line, maxsplit=1)[0].strip()  # a trailing comment
            if line and not line.startswith("#"):
                commands += [c.strip() for c in re.split(r";|&&", line) if c.strip()]
    for span in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", text):
        # `morphcpt plan` alone names the command in prose; with arguments it is one to run
        if (span.startswith(("make ", "snakemake ")) or (span.startswith("morphcpt ") and len(span.split()) > 2)) \
                and not re.search(r"[\[\]{}<>]|\.\.\.|…", span):
            commands.append(span)
    return commands


@pytest.fixture(scope="module")
def workflow_rules(repo_root, tmp_path_factory):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules", "--snakefile", str(repo_root / "Snakefile"),
                           "--configfile", str(repo_root / "config" / "config.yaml"),
                           "--directory", str(tmp_path_factory.mktemp("rules"))],
                          capture_output=True, text=True, timeout=120, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line for line in proc.stdout.split() if re.fullmatch(r"\w+", line)}


def _check_command(command: str, repo_root, rules: set[str], make_targets: set[str]) -> str | None:
    """None if `command` runs as written from the repository root, else why not."""
    from morphcpt.cli import COMMANDS, build_parser

    argv = shlex.split(command)
    env = [a for a in argv if re.fullmatch(r"[A-Z_]+=\S*", a)]
    argv = argv[len(env):] if argv[: len(env)] == env else argv
    program, args = argv[0], argv[1:]
    if program == "make":
        wanted = [a for a in args if "=" not in a]
        return None if set(wanted) <= make_targets else f"no make target {set(wanted) - make_targets}"
    if program.endswith("morphcpt"):
        if not args or args[0] not in COMMANDS:
            return f"no morphcpt subcommand {args[:1]}"
        try:
            build_parser(args[0]).parse_args(args)
        except SystemExit:
            return "morphcpt does not accept these arguments"
        return None
    if program.endswith("snakemake"):
        from snakemake.cli import get_argument_parser

        try:
            parsed = get_argument_parser().parse_args(args)
        except SystemExit:
            return "snakemake does not accept these arguments"
        for target in parsed.targets or []:
            if "/" not in target and target not in rules:
                return f"no rule or target {target!r} in the workflow"
        for profile in parsed.profile or []:
            if "/" in profile and not (repo_root / profile).is_dir():
                return f"no profile folder {profile}"
        return None
    if program in ("bash", "python", "sh") or "/" in program:
        script = args[0] if program in ("bash", "python", "sh") else program
        return None if (repo_root / script).is_file() else f"no file {script}"
    if program.endswith("pytest"):
        paths = [a for a in args if not a.startswith("-") and "/" in a]
        return None if all((repo_root / p).exists() for p in paths) else f"no test path among {paths}"
    return None  # other tools (export, sinfo, xdg-open) are the user's own


def test_readme_commands_run_as_written(repo_root, workflow_rules):
    readme = (repo_root / "README.md").read_text()
    makefile = (repo_root / "Makefile").read_text()
    make_targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    commands = readme_commands(readme)
    assert len(commands) > 15 and any(c.startswith("morphcpt verify-shards") for c in commands)
    problems = [f"{c!r}: {why}" for c in commands if (why := _check_command(c, repo_root, workflow_rules, make_targets))]
    assert problems == []


def test_readme_log_paths_are_the_rules_log_paths(repo_root):
    """Every `<results_dir>/logs/...log` the README names matches a rule's `log:` pattern."""
    readme = (repo_root / "README.md").read_text()
    patterns = []
    for parts in re.findall(r"layout\.log\(([^)]*)\)", "".join(p.read_text() for p in (repo_root / "rules").glob("*.smk"))):
        names = [s.strip().strip('"') for s in parts.split(",") if s.strip()]
        regex = "/".join(re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(n)) for n in names)
        patterns.append(re.compile(rf"logs/{regex}\.log"))
    shown = [p for p in re.findall(r"results(?:-demo)?/logs/[^\s`),]+\.log", readme) if "<" not in p]
    assert len(shown) >= 5
    wrong = [path for path in shown if not any(p.fullmatch(path.split("/", 1)[1]) for p in patterns)]
    assert wrong == [], "these log paths are not where the rules write their logs"


def test_readme_demo_paths_are_where_make_demo_writes(repo_root):
    """What the README tells a user to open after `make demo` lies under the demo's results_dir."""
    from morphcpt.config import load_config

    demo_root = load_config(repo_root / "config" / "demo.yaml")["results_dir"]
    readme = (repo_root / "README.md").read_text()
    makefile = (repo_root / "Makefile").read_text()
    demo_section = readme[readme.index("## Quickstart"):readme.index("## On a Slurm GPU cluster")]
    shown = set(re.findall(r"\b(results[\w-]*)/", demo_section)) | set(re.findall(r"\b(results[\w-]*)/", makefile))
    assert shown == {demo_root}, f"the demo section and Makefile name {shown}; make demo writes {demo_root}/"


def test_readme_cpu_commands_run(repo_root, tmp_path, llama3_tokenizer_dir):
    """The README's CPU commands that write nothing into the repository run as written, from the
    repository root (an --output is redirected into a temporary folder)."""
    from morphcpt.assets import cache_dir

    commands = [c for c in readme_commands((repo_root / "README.md").read_text())
                if c.startswith(("morphcpt plan ", "morphcpt segment "))]
    assert {c.split()[1] for c in commands} == {"plan", "segment"}
    bin_dir = Path(sys.executable).parent
    for command in dict.fromkeys(commands):
        argv = shlex.split(command)
        if "--output" in argv:
            argv[argv.index("--output") + 1] = str(tmp_path / "out.jsonl")
        if "--tokenizer" in argv:  # the folder make setup extracts (cache_dir() may be elsewhere here)
            assert argv[argv.index("--tokenizer") + 1] == ".cache/morphcpt/llama3-tokenizer"
            assert llama3_tokenizer_dir == cache_dir() / "llama3-tokenizer" or "MORPHCPT_CACHE" in os.environ
            argv[argv.index("--tokenizer") + 1] = str(llama3_tokenizer_dir)
        proc = subprocess.run([str(bin_dir / argv[0]), *argv[1:]], cwd=repo_root, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, f"{command}: {proc.stderr[-2000:]}"


def test_readme_install_steps_are_the_makefiles(repo_root, tmp_path):
    """The two pip commands the README says `make setup` runs are those make runs on a fresh machine
    (`make -n setup` with a venv that does not exist yet), and the versions the README names are
    constraints.txt's pins. Every `make` command the README shows dry-runs as written."""
    readme = (repo_root / "README.md").read_text()
    proc = subprocess.run(["make", "-n", "setup", f"VENV={tmp_path / 'venv'}"], cwd=repo_root, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    pips = [line.split(" -m ", 1)[1].replace(" -q", "") for line in proc.stdout.splitlines() if " -m pip install" in line]
    assert pips[0] == "pip install -U pip"
    assert [f"`{cmd}`" in readme for cmd in pips[1:]] == [True, True], pips[1:]  # torch, then the pinned stack
    pins = dict(re.findall(r"^([\w.-]+)==(\S+)$", (repo_root / "constraints.txt").read_text(), flags=re.M))
    assert f"torch=={pins['torch']} " in pips[1]
    shown = re.search(r"from PyPI: NeMo ([\d.]+),\s+megatron-core ([\d.]+), transformers ([\d.]+), Snakemake ([\d.]+), "
                      r"lm-eval ([\d.]+)", readme.replace("\n", " "))
    assert shown, "the README's list of pinned versions in the install steps"
    for name, version in zip(("nemo-toolkit", "megatron-core", "transformers", "snakemake", "lm_eval"), shown.groups()):
        assert f"{pins[name]}.".startswith(f"{version}."), f"README says {name} {version}, constraints.txt pins {pins[name]}"
    for command in {c for c in readme_commands(readme) if c.startswith("make")}:
        dry = subprocess.run(["make", "-n", *shlex.split(command)[1:]], cwd=repo_root, capture_output=True, text=True,
                             timeout=60)
        assert dry.returncode == 0, f"{command}: {dry.stderr}"
