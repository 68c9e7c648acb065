"""Step 3 of ``import --report``: which command printed each output.

A block is cut at its shell prompt lines (``root@k8s-worker:~# ip link show | grep 5``):
each prompt with a command starts an output, a prompt alone ends one. The command of an
output is, in this order of trust:

1. the command typed at its prompt (``command_from="prompt"``);
2. a block that is only a prompt and a command with no output (the student fenced the
   command and pasted its output as a table after it): that command, for the next block
   (``"prompt before"``);
3. the last command the prose before it quotes in backticks (```docker ps``` 之后获得的
   结果) when the content agrees (``"text before"``);
4. the content alone, by the parsers' own detectors (``"content"``).

``parser_for_command`` maps a command line to the parser that reads its output. Prompts
are recognised only with a user@host or ``[user@host dir]`` part: a bare ``# …`` line is a
comment in the scripts students paste, not a root prompt.
"""

from __future__ import annotations

import re
from typing import Optional

from pydantic import BaseModel, Field

from labreport.reportimport.split import Block

_PROMPT_RE = re.compile(
    r"^\s*(?:\^C)?(?:\[(?P<bracket>[^\]\n]{1,80})\]\s*[#$%]|(?P<user>[\w.-]+)@(?P<host>[\w.-]+)(?::[^\s#$]*)?\s*[#$%])"
    r"\s?(?P<cmd>.*)$"
)
_BACKTICK_RE = re.compile(r"`([^`\n]{2,200})`")


class Output(BaseModel):
    """One command's output cut out of a report."""

    source: str  # "report.txt:123" (the report line of its first line)
    start_line: int
    lines: list[str]
    command: Optional[str] = None
    command_from: str = "none"  # prompt | prompt before | text before | content | none
    prompt_host: Optional[str] = None  # the host name of its prompt (root@HOST:…#)
    question: Optional[int] = None
    context: str = ""
    fenced: bool = True
    repairs: list[str] = Field(default_factory=list)
    parser: Optional[str] = None
    kind: Optional[str] = None  # the importer's file kind ("containers", "ip-addr", "pod-ip-addr:NS" …)
    node: Optional[str] = None  # the node it was taken on (None: cluster-wide)
    node_from: str = ""  # prompt | text before | section | question | only node | cluster
    stated_node: Optional[str] = None  # the node the report's words give, when it differs from the prompt
    phase: str = "after"  # before | after (Q5's two container lists, the rules before/after scaling)
    pod: Optional[str] = None  # a pod's own shell (root@testpod): the pod whose namespace it shows

    @property
    def text(self) -> str:
        return "\n".join(self.lines).strip("\n") + "\n"


def split_prompt(line: str) -> tuple[bool, Optional[str], str]:
    """(is a prompt line, its host name, the command typed after it)."""
    m = _PROMPT_RE.match(line)
    if not m:
        return False, None, ""
    host = m.group("host")
    if host is None and m.group("bracket"):
        parts = m.group("bracket").split()
        if parts and "@" in parts[0]:
            host = parts[0].split("@", 1)[1]
    return True, host, m.group("cmd").strip()


def cut_block(block: Block, report: str) -> list[Output]:
    """The outputs of one block: one per prompt with a command, plus the text before the
    first prompt (when there is any)."""
    outs: list[Output] = []
    cur: Optional[Output] = None

    def start(i: int, cmd: Optional[str], host: Optional[str]) -> Output:
        line_no = block.line_numbers[i] if i < len(block.line_numbers) else block.start_line
        o = Output(source=f"{report}:{line_no}", start_line=line_no, lines=[], command=cmd or None,
                   command_from="prompt" if cmd else "none", prompt_host=host, question=block.question,
                   context=block.context, fenced=block.fenced)
        outs.append(o)
        return o

    for i, line in enumerate(block.lines):
        is_prompt, host, cmd = split_prompt(line)
        if is_prompt:
            if cmd and not cmd.startswith("#"):
                cur = start(i, cmd, host)
                cur.lines.append(line)
            else:
                if cur is not None and host and cur.prompt_host is None:
                    cur.prompt_host = host
                cur = None  # a prompt alone: the output before it is complete
            continue
        if cur is None:
            cur = start(i, None, None)
        cur.lines.append(line)
    return [o for o in outs if any(ln.strip() for ln in o.lines)]


def backtick_command(context: str) -> Optional[str]:
    """The last command the prose quotes in backticks, if it looks like one."""
    found = None
    for m in _BACKTICK_RE.finditer(context):
        text = m.group(1).strip()
        if parser_for_command(text) is not None:
            found = text
    return found


def _words(cmd: str) -> list[str]:
    out = []
    for w in cmd.replace("|", " | ").split():
        if w in ("sudo", "time", "watch"):
            continue
        out.append(w)
    return out


def parser_for_command(cmd: str) -> Optional[str]:
    """The parser that reads what ``cmd`` prints (the first command of a pipe decides,
    ``| grep`` only filters), or None for commands whose output labreport does not read."""
    first = cmd.split("|", 1)[0]
    w = _words(first)
    if not w:
        return None
    prog = w[0].rsplit("/", 1)[-1]
    args = w[1:]
    if prog == "kubect1":  # the OCR'd / misspelled kubectl students type
        prog = "kubectl"
    if prog == "ps":
        return "ps"
    if prog == "docker" and args[:1] == ["ps"]:
        return "docker-ps"
    if prog == "docker" and args[:1] == ["inspect"]:
        return "docker-inspect"
    if prog == "crictl" and args[:1] == ["ps"]:
        return "crictl-ps"
    if prog == "crictl" and args[:1] == ["pods"]:
        return "crictl-pods"
    if prog == "crictl" and args[:1] == ["inspect"]:
        return None
    if prog == "ctr" and ("c" in args or "containers" in args or "container" in args) and (
            "ls" in args or "list" in args):
        return "ctr-containers"
    if prog == "ip":
        rest = [a for a in args if not a.startswith("-")]
        obj = rest[0] if rest else ""
        if obj in ("link", "l", "addr", "a", "address", "ad"):
            return "ip-addr"
        if obj in ("route", "r", "ro", "rou"):
            return "ip-route"
        if obj == "netns" and "exec" in args:
            inner = args[args.index("exec") + 2:] if len(args) > args.index("exec") + 2 else []
            return parser_for_command(" ".join(inner)) if inner else None
        return None
    if prog in ("iptables-save", "ip6tables-save", "iptables-legacy-save", "iptables-nft-save"):
        return "iptables-save"
    if prog in ("iptables", "ip6tables") and ("-S" in args or "--list-rules" in args):
        return "iptables-save"
    if prog == "nft" and "list" in args:
        return "nft"
    if prog == "ipvsadm":
        return "ipvsadm"
    if prog == "sysctl":
        return "sysctl"
    if prog == "lsmod":
        return "lsmod"
    if prog == "kubeadm" and args[:1] in (["init"], ["join"]):
        return "kubeadm"
    if prog == "cat" and any(a.endswith((".yaml", ".yml", ".json")) for a in args):
        return "kubectl"
    if prog == "kubectl":
        if not args:
            return None
        verb = args[0]
        if verb == "get":
            if any(a in ("-o", "--output") for a in args) or any(
                    a.startswith(("-oyaml", "-ojson", "-o=yaml", "-o=json", "--output=yaml", "--output=json",
                                  "-o=wide", "-owide")) for a in args):
                idx = [i for i, a in enumerate(args) if a in ("-o", "--output")]
                fmt = args[idx[0] + 1] if idx and idx[0] + 1 < len(args) else "".join(
                    a.split("=", 1)[-1].replace("-o", "") for a in args if a.startswith(("-o", "--output")))
                if fmt.startswith(("yaml", "json")):
                    return "kubectl"
            return "kubectl-get"
        if verb == "describe":
            return "kubectl-describe"
        if verb == "top":
            return None
        return None
    return None


def kubectl_get_resource(cmd: str) -> Optional[str]:
    """``kubectl get svc test-service -o wide`` -> "svc" (the resource word)."""
    w = _words(cmd.split("|", 1)[0])
    if len(w) >= 3 and w[0].rsplit("/", 1)[-1] in ("kubectl", "kubect1") and w[1] == "get":
        for a in w[2:]:
            if not a.startswith("-"):
                return a
    return None
