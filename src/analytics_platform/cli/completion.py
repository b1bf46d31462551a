"""``tap completion bash|zsh``: a shell completion script generated from the parser itself, so it lists exactly
the commands, options and choices ``tap`` has."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

from analytics_platform.cli.options import Command, Subparsers, add_command
from analytics_platform.exit_codes import ExitCode

BASH = """\
# tap completion for {shell}; load it with: source <(tap completion {shell})
{preamble}_tap() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="" path="" i word opts=""
    [ "$COMP_CWORD" -gt 0 ] && prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        case "$path $word" in
            {paths}) path="$path $word" ;;
        esac
    done
    case "$path:$prev" in
{values}
{choices}
    esac
    if [ -z "$opts" ]; then
        case "$path" in
{commands}
        esac
    fi
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -o default -F _tap tap
"""


def _walk(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _walk(child, f"{path} {name}")


def _words(parser: argparse.ArgumentParser) -> list[str]:
    words: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            words += list(action.choices)
        words += action.option_strings
    return words


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of ``parser`` for ``shell`` (bash, or zsh through its bash compatibility)."""
    walked = list(_walk(parser))
    paths = "|".join(shlex.quote(path) for path, _ in walked if path)
    commands = "\n".join(f'            {shlex.quote(path)}) opts={shlex.quote(" ".join(_words(p)))} ;;'
                         for path, p in walked)  # fmt: skip
    choices = "\n".join(
        f'        {shlex.quote(f"{path}:{option}")}) opts={shlex.quote(" ".join(map(str, action.choices)))} ;;'
        for path, p in walked for action in p._actions if action.choices and action.option_strings
        for option in action.option_strings
    )  # fmt: skip
    # An option taking a free value (a file, a folder, a name): nothing of tap's, so the shell's own (file names).
    free = sorted({shlex.quote(f"{path}:{option}") for path, p in walked for action in p._actions
                   if action.option_strings and action.nargs != 0 and not action.choices
                   for option in action.option_strings})  # fmt: skip
    values = f"        {'|'.join(free)}) COMPREPLY=(); return 0 ;;" if free else "        '') ;;"
    preamble = "autoload -U +X bashcompinit && bashcompinit\n" if shell == "zsh" else ""
    return BASH.format(
        shell=shell,
        preamble=preamble,
        paths=paths,
        commands=commands,
        choices=choices or "        *) ;;",
        values=values,
    )


def _cmd_completion(args: argparse.Namespace) -> int:
    from analytics_platform.cli import build_parser

    print(script(build_parser(), args.shell), end="")
    return ExitCode.OK


COMPLETION = Command(
    "completion", _cmd_completion, "Print a shell completion script for bash or zsh.",
    examples=("source <(tap completion bash)    # in ~/.bashrc", "source <(tap completion zsh)     # in ~/.zshrc"),
)  # fmt: skip


def register(sub: Subparsers) -> None:
    completion = add_command(sub, COMPLETION)
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete in")
