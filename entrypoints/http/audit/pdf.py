"""``dossier.pdf``, the « dossier de preuve »: cover, status, timeline, policies, how to verify.

Made with fpdf2 (pure Python, installed with the project). Its built-in Helvetica covers
Latin-1, which French needs; the few typographic signs outside it (curly quotes, dashes) are
written as their plain equivalents, and any other character (an address in another script) as
``?`` in the PDF only: the page, the CSV and the bundle keep every character.
"""

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import CoreFont

from access.apikeys import ApiKey
from entrypoints.http.audit.dossier import Dossier, words_for
from entrypoints.http.audit.words import LABELLED, Words
from entrypoints.http.pages import Pages
from entrypoints.http.pages.i18n import N_

__all__ = ["dossier_pdf"]

_PLAIN = str.maketrans(
    {
        "\u201c": '"',
        "\u201d": '"',
        "\u2018": "'",
        "\u2019": "'",
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u202f": " ",
        "\u00a0": " ",
    }
)
_FONT = "Helvetica"


def _latin1(text: str) -> str:
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


class _Document(FPDF):
    def __init__(self, footer: str) -> None:
        super().__init__(format="A4")
        self._footer = footer
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(18, 18, 18)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FONT, size=8)
        self.cell(0, 5, _latin1(f"{self._footer} - {self.page_no()}"), align="C")

    def heading(self, text: str, size: int = 14) -> None:
        self.ln(3)
        self.para(text, bold=True, size=size)

    def para(self, text: str, *, bold: bool = False, mono: bool = False, size: int = 10) -> None:
        self.set_font("Courier" if mono else _FONT, "B" if bold else "", size)
        # fpdf2's multi_cell measures each line again for every character it adds, which costs
        # seconds on a long dossier: lines are broken here, measuring each word once.
        for line in self._lines(_latin1(text), mono=mono):
            self.cell(0, 5, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(_FONT, size=10)

    def _lines(self, text: str, *, mono: bool) -> list[str]:
        room = self.epw
        font = self.current_font
        if not isinstance(font, CoreFont):
            raise TypeError("the dossier is set in a core font")
        widths = font.cw  # a core font's widths, in 1/1000 em
        scale = self.font_size / 1000

        def width_of(word: str) -> float:
            return sum(widths.get(char, 1000) for char in word) * scale

        lines: list[str] = []
        for paragraph in text.split("\n"):
            if mono:
                per_line = max(1, int(room // width_of("0")))
                lines += [paragraph[i : i + per_line] for i in range(0, len(paragraph), per_line)]
                lines += [] if paragraph else [""]
                continue
            line, width, space = "", 0.0, width_of(" ")
            for word in paragraph.split(" "):
                size = width_of(word)
                if line and width + space + size > room:
                    lines.append(line)
                    line, width = word, size
                else:
                    line, width = (f"{line} {word}" if line else word), width + space + size
            lines.append(line)
        return lines


def dossier_pdf(pages: Pages, lang: str, dossier: Dossier, key: ApiKey) -> bytes:
    w = words_for(pages, lang, [])
    pdf = _Document(w.say(N_("Proof dossier")) + f" - {dossier.subject[:16]}")
    pdf.set_title(_latin1(w.say(N_("Proof dossier"))))
    pdf.add_page()
    pdf.heading(w.say(N_("Proof dossier")), 20)
    pdf.para(w.say(N_("Subject: %(subject)s"), subject=dossier.subject))
    pdf.para(
        w.say(
            N_("Asked by %(name)s (API key %(key)s) on %(when)s (Paris time)."),
            name=key.name,
            key=key.key_id,
            when=w.moment(dossier.made_at),
        )
    )
    pdf.para(w.say(N_("Log: %(origin)s"), origin=dossier.origin))
    if dossier.checkpoint is not None:
        pdf.heading(w.say(N_("Signed checkpoint")))
        pdf.para(dossier.checkpoint.text)
        pdf.para(dossier.checkpoint.note, mono=True, size=8)
        pdf.para(w.say(N_("Fingerprint of the verifier key (SHA-256):")))
        pdf.para(dossier.checkpoint.fingerprint, mono=True)
        pdf.para(dossier.checkpoint.verifier_key, mono=True, size=8)
    if dossier.erased_at is not None:
        pdf.heading(w.say(N_("This person was erased")))
        pdf.para(
            w.say(
                N_(
                    "On %(when)s (Paris time) the person's data key was destroyed (GDPR art. "
                    "17, erasure by crypto-shredding)."
                ),
                when=w.moment(dossier.erased_at),
            )
        )
        pdf.para(
            w.say(
                N_(
                    "each leaf of the tree is the hash of the event as stored, that is of its "
                    "ciphertext. Destroying the key changes no stored byte, so every proof "
                    "below still verifies."
                )
            )
        )
    _status(pdf, dossier, w)
    _timeline(pdf, dossier, w)
    _policies(pdf, dossier, w)
    _how_to_verify(pdf, dossier, w)
    return bytes(pdf.output())


def _status(pdf: _Document, dossier: Dossier, w: Words) -> None:
    pdf.add_page()
    pdf.heading(w.say(N_("Status now")))
    for s in dossier.status:
        answer = w.say(N_("allowed")) if s.allowed else w.say(N_("refused"))
        deciding = w.say(N_("event %(n)s"), n=s.deciding) if s.deciding else w.say(N_("none"))
        pdf.para(w.say(LABELLED, label=f"{s.name} ({s.channel})", value=answer), bold=True)
        pdf.para(f"{s.reason} - {w.moment(s.since)} - {deciding}")


def _timeline(pdf: _Document, dossier: Dossier, w: Words) -> None:
    pdf.heading(w.say(N_("Timeline")))
    for line in dossier.timeline:
        pdf.para(line.sentence, bold=True)
        pdf.para(
            w.say(N_("Event %(n)s of the ledger"), n=line.position) + " - " + line.proof.text,
            size=9,
        )
        for label, value, _href in line.evidence:
            pdf.para(w.say(LABELLED, label=label, value=value), size=8)
        pdf.ln(2)


def _policies(pdf: _Document, dossier: Dossier, w: Words) -> None:
    if not dossier.policies:
        return
    pdf.heading(w.say(N_("Privacy policy versions concerned")))
    for policy in dossier.policies:
        pdf.para(f"{policy.version} - {w.moment(policy.effective_at)}", bold=True)
        pdf.para(policy.text_sha256, mono=True, size=8)


def _how_to_verify(pdf: _Document, dossier: Dossier, w: Words) -> None:
    pdf.heading(w.say(N_("How to verify, command by command")))
    pdf.para(
        w.say(
            N_(
                "Download bundle.zip from the dossier's page, then, on any machine with "
                "Python 3.11 or newer:"
            )
        )
    )
    for command in (
        "unzip bundle.zip",
        "python3 -m venv venv",
        "venv/bin/pip install cryptography",
        'venv/bin/python verify.py bundle.json --key "$(cat verifier.key)"',
    ):
        pdf.para(command, mono=True)
    pdf.para(
        w.say(
            N_(
                "The verifier prints ACCEPTÉ when every event leads to the signed root; "
                "compare the key's fingerprint above with the one the operator publishes."
            )
        )
    )
