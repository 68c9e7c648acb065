"""Step 3 of ``import --report`` (with :mod:`.command`): the report's blocks cut into
outputs, each with the parser that reads it.

A block's line-number gutter is removed first (so its prompts show); then it is cut at its
prompts (:func:`labreport.reportimport.command.cut_block`). The parser of each output comes
from its command (prompt, a prompt-only block just before it, a command quoted in the prose
before it when the content agrees) or from the content alone — except that a shell script
or a heredoc (``cat > k8s.conf << EOF`` … ``net.ipv4.ip_forward = 1``) is never read as the
output of the commands it types.
"""

from __future__ import annotations

from typing import Optional

from labreport.errors import ParseError
from labreport.reportimport.assemble import ReportWarning
from labreport.reportimport.command import Output, backtick_command, cut_block, parser_for_command
from labreport.reportimport.extract import ReportText
from labreport.reportimport.repair import strip_gutter
from labreport.reportimport.split import Block, split_blocks

# what each parser's output proves a node ran: the content detector may pick among these
_COMPATIBLE = {"crictl-ps": {"crictl-pods"}, "docker-inspect": set(), "ip-addr": set()}


def _detect(text: str) -> Optional[str]:
    from labreport.parsers import detect

    try:
        return detect(text)
    except ParseError:
        return None


def _choose_parser(o: Output, pending: Optional[str]) -> None:
    content = _detect(o.text)
    if o.command:
        o.parser = parser_for_command(o.command)
        if o.parser is None and content is not None and o.command_from == "prompt":
            o.parser = None  # a command labreport does not read (ls, ping …): not evidence
        return
    if pending:
        p = parser_for_command(pending)
        if p is not None and (content is None or content == p or content in _COMPATIBLE.get(p, set())):
            o.command, o.command_from, o.parser = pending, "prompt before", p
            return
    cmd = backtick_command(o.context)
    if cmd is not None:
        p = parser_for_command(cmd)
        if p is not None and (content == p or (content is None and p not in ("kubectl",))
                              or content in _COMPATIBLE.get(p, set())):
            o.command, o.command_from, o.parser = cmd, "text before", p
            return
    if content is not None and not (content in _SCRIPT_SENSITIVE and _looks_like_script(o.lines)):
        o.parser, o.command_from = content, "content"


_SCRIPT_SENSITIVE = {"sysctl", "lsmod", "kubeadm", "ps", "kubectl-get"}
_SHELL_WORDS = {"sudo", "cat", "echo", "EOF", "apt", "apt-get", "export", "modprobe", "systemctl", "tee", "curl",
                "wget", "mkdir", "cp", "mv", "chmod", "chown", "for", "do", "done", "if", "then", "fi"}


def _looks_like_script(lines: list[str]) -> bool:
    """Commands typed (a shell script, a heredoc writing a config), not their output."""
    for ln in lines:
        w = ln.strip().split(" ", 1)[0] if ln.strip() else ""
        if w in _SHELL_WORDS or w.startswith("#"):
            return True
    return False


def cut_report(report: ReportText) -> tuple[list[Output], list[ReportWarning], dict[int, list[int]]]:
    warnings: list[ReportWarning] = []
    outputs: list[Output] = []
    breaks: dict[int, list[int]] = {}
    blocks: list[Block] = split_blocks(report.text)
    pending: Optional[str] = None
    for block in blocks:
        marks = list(block.breaks)
        lines, gutter = strip_gutter(block.lines, marks)
        block.lines = lines
        if len(block.line_numbers) != len(lines):
            block.line_numbers = (block.line_numbers + [block.line_numbers[-1] if block.line_numbers else
                                                        block.start_line] * len(lines))[:len(lines)]
        outs = cut_block(block, report.path)
        if not outs:
            continue
        for o in outs:
            if gutter:
                o.repairs.append(gutter)
            if marks:
                breaks[id(o)] = marks
        # a block that is only "prompt + command" (its output pasted as a table after it)
        last = outs[-1]
        only_prompt = last.command and len([ln for ln in last.lines if ln.strip()]) == 1
        for o in outs:
            if o is last and only_prompt:
                continue
            _choose_parser(o, pending if (not block.fenced or o.command is None) and o is outs[0] else None)
            if o.parser:
                outputs.append(o)
        pending = last.command if only_prompt else None
    return outputs, warnings, breaks


