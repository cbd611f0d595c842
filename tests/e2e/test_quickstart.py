"""The README's "Five minutes with curl", run as a new user would, against `consent-ledger serve`.

Every ``$`` command of the section's console blocks runs in bash, in order, in a fresh
directory and data directory, with the installed CLI on the PATH. Each output must be the one
the README shows, except for what differs from one install to the next (keys, subjects, ids,
tokens): those are learned from the first output that shows them and then expected, and
substituted into the commands that follow, as a reader copies them. Everything else (answers,
reasons, positions, status codes, hashes) must be as printed.
"""

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli import CLI, clean_env, serving

README = Path(__file__).parents[2] / "README.md"
SECTION = "## Five minutes with curl"
ORIGIN = "http://127.0.0.1:8000"
SKIPPED = {"make run", ". .venv/bin/activate"}
"""The server is started by the test; the CLI is on the PATH it gives."""
ENFORCED_WITHIN_S = 1.0
"""`CONSENT_CHECK_MAX_STALENESS_S`: a check may not yet see a write younger than this. A reader
types slower than that; the test waits as long before each check, as printed without
`min_position`."""
VARYING = re.compile(
    r"clk_[0-9a-f]{12}_[A-Za-z0-9_-]+"
    r"|[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}"
    r"|[A-Za-z0-9_-]{40,}"
    r'|(?<=")[0-9a-f]{12}(?=")'
)
"""What one install prints differently from another: keys, ids, subjects, signed tokens."""


@dataclass(frozen=True)
class Step:
    command: str
    output: list[str]


def steps(text: str) -> list[Step]:
    """The section's commands, each with the lines printed under it."""
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    found: list[Step] = []
    for block in re.findall(r"```console\n(.*?)```", section, flags=re.DOTALL):
        lines = block.splitlines()
        index = 0
        while index < len(lines):
            assert lines[index].startswith("$ "), lines[index]
            command = [lines[index][2:]]
            while command[-1].endswith("\\"):
                index += 1
                command.append(lines[index])
            index += 1
            output = []
            while index < len(lines) and not lines[index].startswith("$ "):
                output.append(lines[index])
                index += 1
            found.append(Step("\n".join(command), output))
    return found


class Reader:
    """Runs the steps as a reader would, learning what their install prints differently."""

    def __init__(self, url: str, env: dict[str, str], work: Path) -> None:
        self.url, self.env, self.work = url, env, work
        self.learned: dict[str, str] = {}
        self.prelude: list[str] = []

    def substitute(self, text: str) -> str:
        # Longest first: a key id is also part of its key.
        for printed in sorted(self.learned, key=len, reverse=True):
            text = text.replace(printed, self.learned[printed])
        return text.replace(ORIGIN, self.url)

    def run(self, step: Step) -> list[str]:
        command = self.substitute(step.command)
        if "/v1/check?" in command and "min_position" not in command:
            time.sleep(ENFORCED_WITHIN_S + 0.2)
        script = "\n".join([*self.prelude, command])
        result = subprocess.run(
            ["bash", "-c", f"{{ {script}\n}} 2>&1"],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}"
        if not step.output and re.fullmatch(r"\w+=.*", command):
            self.prelude.append(command)  # KEY=..., H=...; J=...: kept for what follows
        return result.stdout.replace(self.url, ORIGIN).splitlines()

    def expect(self, printed: str, actual: str) -> None:
        """``actual`` is ``printed`` once what varies is learned or substituted."""
        pattern, names = [], []
        position = 0
        for token in VARYING.finditer(printed):
            pattern.append(re.escape(printed[position : token.start()]))
            if token.group() in self.learned:
                pattern.append(re.escape(self.learned[token.group()]))
            else:
                pattern.append(f"({VARYING.pattern})")
                names.append(token.group())
            position = token.end()
        pattern.append(re.escape(printed[position:]))
        match = re.fullmatch("".join(pattern), actual)
        assert match is not None, f"README prints\n  {printed}\nthe run printed\n  {actual}"
        self.learned.update(zip(names, match.groups(), strict=True))


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[Reader]:
    data = tmp_path / "var"
    env = clean_env(CONSENT_DATA_DIR=str(data))
    env["PATH"] = f"{Path(CLI).parent}:{env['PATH']}"
    with serving(CLI, env, cwd=tmp_path) as url:
        yield Reader(url, env, tmp_path)


def test_the_quickstart_runs_as_printed_to_a_dossier(reader: Reader) -> None:
    readme = steps(README.read_text(encoding="utf-8"))
    ran = [step for step in readme if step.command not in SKIPPED]
    assert len(ran) >= 15, "the quickstart lost its steps"
    for step in ran:
        actual = reader.run(step)
        assert len(actual) == len(step.output), (step.command, actual)
        for printed, line in zip(step.output, actual, strict=True):
            reader.expect(printed, line)
    # What step 8 says a person sees on the dossier the search led to.
    location = next(
        line.split()[1] for step in ran for line in step.output if line.startswith("303 ")
    )
    key = next(value for printed, value in reader.learned.items() if printed.startswith("clk_"))
    page = httpx.get(reader.substitute(f"{ORIGIN}{location}"), auth=("", key), timeout=10)
    assert page.status_code == 200
    text = page.text.replace("&#39;", "'")
    for words in (
        "Situation actuelle",
        "refusé",
        "la personne s'est désinscrite",
        "Consentement demandé pour « The monthly newsletter »",
        "Double opt-in confirmé",
        "192.0.2.4",
        "quickstart (api-key:",
    ):
        assert words in text, words
