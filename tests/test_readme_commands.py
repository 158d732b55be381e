"""The `speechface` command lines in README.md are accepted by the command's own parser, and their Hydra overrides compose.

Nothing is run: each line is parsed with `speechface.cli.build_parser()`, and the overrides of `train` / `test` go through
`load_config` (unknown keys, bad values and bad config-group options raise there). Code blocks are checked as written;
commands quoted inline in the prose are checked for option names, types, choices and overrides (not for completeness:
the prose may leave out a required `--out`). The README's reward and RL lines must also be the recipe `speechface demo`
runs (`speechface.pipeline.PLANS["full"]`, `RL_RECIPE`)."""
import argparse, contextlib, io, itertools, re, shlex
from pathlib import Path
import pytest
from omegaconf import OmegaConf
from speechface.cli import build_parser

try: from speechface.train.settings import load_config          # where it lives now
except ImportError: from speechface.train.supervised import load_config

README = Path(__file__).resolve().parents[1] / "README.md"
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")             # `SPEECHFACE_DEBUG=1 speechface ...`
PLACEHOLDER = "..."                                                  # `speechface train ... trainer.grad_accum=2`: the overrides above
METAVARIABLES = {"N": "0"}                                           # prose: `--seed N`


def code_blocks(markdown: str) -> list[str]:
    "The shell code blocks of a markdown text (fenced, any language but python)."
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", markdown, flags=re.S | re.M) if lang != "python"]


def shell_commands(block: str) -> list[list[str]]:
    "The simple commands of a shell block: `\\` continuations joined, comments dropped, `&&` / `||` / `;` / `|` split."
    text = re.sub(r"\\\n", " ", block)
    cmds = []
    for line in text.splitlines():
        if not re.search(r"\bspeechface\b", line): continue           # prose-like blocks (a folder layout) hold no command
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lex.whitespace_split, lex.commenters = True, "#"
        words = []
        for tok in list(lex) + [";"]:
            if tok and set(tok) <= set(";&|"):
                if words: cmds.append(words)
                words = []
            else: words.append(tok)
    return cmds


def speechface_args(words: list[str]) -> list[str] | None:
    "The arguments of a `speechface ...` or `... -m speechface.cli ...` command (env-var prefixes skipped); None if neither."
    while words and ENV_ASSIGNMENT.match(words[0]): words = words[1:]
    if words and words[0] == "speechface": return words[1:]
    for i in range(len(words) - 1):
        if words[i] == "-m" and words[i + 1] == "speechface.cli": return words[i + 2:]
    return None


def readme_commands(markdown: str) -> list[list[str]]:
    "Every `speechface` command line in the code blocks of `markdown`, as its argument lists."
    return [a for b in code_blocks(markdown) for w in shell_commands(b) if (a := speechface_args(w)) is not None]


def lenient(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    "The parser with nothing required (for commands quoted in prose); names, types, choices still checked."
    for act in parser._actions:
        if isinstance(act, argparse._SubParsersAction):
            for p in set(act.choices.values()): lenient(p)
        elif act.option_strings: act.required = False
        elif act.nargs in (None, "+"): act.nargs = "?" if act.nargs is None else "*"
    return parser


def check(args: list[str], parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    "Parse `args` as `speechface` does and compose `train` / `test` overrides; AssertionError naming the line if refused."
    line = "speechface " + shlex.join(args)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try: a = (parser or build_parser()).parse_args([x for x in args if x not in ("--debug", PLACEHOLDER)])
        except SystemExit as e: raise AssertionError(f"{line}: the parser refuses it: {err.getvalue().strip().splitlines()[-1]}") from e
    if a.command in ("train", "test"):
        try: load_config(a.overrides)
        except Exception as e: raise AssertionError(f"{line}: the overrides do not compose: {e}") from e
    return a


def expansions(span: str) -> list[list[str]]:
    "A command quoted in prose as argument lists: `a|b` and `{a,b}` alternatives expanded, `[optional]` parts kept, `N` -> 0."
    words = shlex.split(span.replace("\n", " ").replace("\\|", "|"))[1:]
    choices = []
    for w in words:
        w = w.strip("[]") if "=" not in w else w
        if m := re.fullmatch(r"\{(.*)\}", w): alts = m.group(1).split(",")
        elif "|" in w:
            first, *rest = w.split("|")
            key = first[:first.index("=") + 1] if "=" in first else ""
            alts = [first] + [key + r for r in rest]
        else: alts = [METAVARIABLES.get(w, w)]
        choices.append(alts)
    return [list(c) for c in itertools.product(*choices)]


def inline_commands(markdown: str) -> list[str]:
    "Commands quoted inline in the prose (outside code blocks) that give more than a subcommand's name."
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    spans = [s for s in re.findall(r"`([^`]+)`", prose) if re.match(r"speechface\s", s)]
    return [s for s in spans if len(s.split()) > 2 or s.split()[-1].startswith("-")]


TEXT = README.read_text(encoding="utf-8")
COMMANDS = readme_commands(TEXT)


def test_the_readme_has_its_commands():
    "The extraction finds the command list, the install line and the `-m speechface.cli` launches (a vacuous pass is a failure)."
    assert len(COMMANDS) >= 20, COMMANDS
    assert ["demo", "--out", "demo_out"] in COMMANDS                                          # the install line's `&&` chain
    assert sum(c[:1] == ["train"] for c in COMMANDS) >= 8
    assert any("trainer.perturbations=[oversmooth,jitter,time_warp,open_closures,shut_openings]" in c
               for c in COMMANDS)  # `\` joined, quotes removed
    assert len(inline_commands(TEXT)) >= 10 and "speechface demo --quick" in inline_commands(TEXT)


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a)[:80])
def test_readme_code_block_command_parses(args):
    check(args)


@pytest.mark.parametrize("span", inline_commands(TEXT), ids=lambda s: s[:80])
def test_readme_inline_command_parses(span):
    for args in expansions(span): check(args, lenient(build_parser()))


def test_the_checker_can_fail():
    "Planted bad lines (an unknown option, an old preset, a bad override) are refused, with the line named."
    planted = ("```bash\nFOO=1 speechface animate a.wav --out x.npy --bogus   # unknown option\n"
               "pip install -e . && speechface synth --preset demo --out d\n"
               "speechface train dataset.root=d \\\n    trainer.lrr=1\n```\n")
    cmds = readme_commands(planted)
    assert cmds == [["animate", "a.wav", "--out", "x.npy", "--bogus"], ["synth", "--preset", "demo", "--out", "d"],
                    ["train", "dataset.root=d", "trainer.lrr=1"]]
    for args, said in zip(cmds, ["unrecognized arguments: --bogus", "preset 'demo' is now called 'small'", "trainer.lrr"]):
        with pytest.raises(AssertionError, match=re.escape(said)): check(args)
    with pytest.raises(AssertionError, match="invalid choice"):
        for args in expansions("speechface check-data ROOT [--dataset vocaset|voca]"): check(args, lenient(build_parser()))


def _train_line(trainer: str, evaluation: bool = False) -> list[str]:
    "The overrides of the README's one `speechface train trainer=<trainer>` line (sync_expert: the reward's or the evaluation expert)."
    found = [c[1:] for c in COMMANDS if c[:1] == ["train"] and f"trainer={trainer}" in c
             and evaluation == ("trainer.evaluation=true" in c)]
    assert len(found) == 1, f"expected one README line `speechface train trainer={trainer}`, found {found}"
    return found[0]


def test_readme_rl_line_is_the_demo_recipe():
    "The README's RL line composes to the RL settings `speechface demo` (full) uses, but for where the actor comes from."
    from speechface.pipeline import PLANS, RL_RECIPE
    readme = load_config(_train_line("rl"))
    demo = load_config(["run=rl", *RL_RECIPE, *PLANS["full"].rl])
    mine, theirs = (OmegaConf.to_container(c.trainer) for c in (readme, demo))
    assert {k: v for k, v in mine.items() if k != "init_actor"} == {k: v for k, v in theirs.items() if k != "init_actor"}
    assert readme.run == demo.run == "rl"


def test_readme_reward_lines_are_the_demo_recipe():
    "The README's sync-expert, evaluation-expert and score-head lines train them as `speechface demo` (full) does."
    from speechface.pipeline import PLANS
    from speechface.train.reward import PERTURBATIONS, MESH_CLOSURE_PERTURBATIONS
    plan = PLANS["full"]
    expert = load_config(_train_line("sync_expert")).trainer
    assert (expert.evaluation, expert.closure_negatives, expert.epochs, expert.max_minutes) == (
        False, plan.closure_negatives, plan.sync_epochs, plan.sync_minutes)
    evaluation = load_config(_train_line("sync_expert", evaluation=True)).trainer
    assert (evaluation.closure_negatives, evaluation.epochs, evaluation.max_minutes) == (0, plan.sync_epochs, plan.sync_minutes)
    head = load_config(_train_line("reward_head")).trainer
    assert (head.epochs, head.max_minutes) == (plan.head_epochs, plan.head_minutes)
    assert list(head.perturbations) == list(PERTURBATIONS + (MESH_CLOSURE_PERTURBATIONS if plan.closure_negatives else ()))
    assert head.actor == "checkpoints/faceformer_synthetic/best.pt"               # the SFT line's checkpoint
