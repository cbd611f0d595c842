"""C2SP signed notes and tlog checkpoints: Go interoperability, round trips and forgeries."""

import base64
import hashlib

import pytest

from ledger.audit.tlog.note import (
    Checkpoint,
    CheckpointFormatError,
    KeyFormatError,
    MalformedNoteError,
    NoteSigner,
    NoteVerifier,
    SignatureError,
    generate_signer,
    open_note,
    parse_checkpoint,
    private_key_bytes,
    signer_from_seed,
)
from ledger.audit.tlog.verify import AuditError

# The example of golang.org/x/mod/sumdb/note (its package documentation and tests).
GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqf"
    "qdngotpRZb6KE6RyyBwJnAM=\n"
)

LOG = "consent-ledger.example/log"
FIXED_SEED = bytes(range(32))
# Computed once by this implementation; a change means every published verifier key breaks.
FIXED_VERIFIER_KEY = (
    "consent-ledger.example/log+64a12ad0+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
)
ROOT_8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
FIXED_SIGNED_CHECKPOINT = (
    "consent-ledger.example/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n"
    "\u2014 consent-ledger.example/log ZKEq0ALpqu+JUoAwq2+w49GbyvAxSvIDZuh2MqglY4g8NV0CZuTCxmEq"
    "dD1t2Q8GEPyAH7U0Eln6F5YC2sQ+wqOWZAE=\n"
)


def _go_signer() -> NoteSigner:
    # The base64 part may itself contain '+'.
    name, _, encoded = GO_SIGNER_KEY.removeprefix("PRIVATE+KEY+").split("+", 2)
    typed_seed = base64.b64decode(encoded)
    assert typed_seed[0] == 1
    return signer_from_seed(name, typed_seed[1:])


def _signature_line(note: str) -> str:
    return note.rsplit("\n\n", 1)[1]


# --- Interoperability and fixed vectors -------------------------------------------------------


def test_go_example_key_and_signature_are_reproduced() -> None:
    signer = _go_signer()
    assert signer.verifier_key() == GO_VERIFIER_KEY
    # Ed25519 is deterministic, so the note must match Go's byte for byte.
    assert signer.sign(GO_TEXT) == GO_NOTE


def test_go_example_note_opens_with_the_go_verifier_key() -> None:
    assert open_note(GO_NOTE, NoteVerifier.from_key(GO_VERIFIER_KEY)) == GO_TEXT


def test_a_fixed_seed_gives_a_fixed_verifier_key_and_signature() -> None:
    signer = signer_from_seed(LOG, FIXED_SEED)
    assert signer.verifier_key() == FIXED_VERIFIER_KEY
    assert signer.sign(Checkpoint(LOG, 8, ROOT_8).body()) == FIXED_SIGNED_CHECKPOINT


def test_key_id_is_the_truncated_hash_of_name_type_and_public_key() -> None:
    signer = signer_from_seed(LOG, FIXED_SEED)
    public_key = signer.verifier().public_key
    expected = hashlib.sha256(LOG.encode() + b"\n\x01" + public_key).digest()[:4]
    assert signer.key_id == expected
    assert signer.verifier().key_id == expected
    assert FIXED_VERIFIER_KEY.split("+")[1] == expected.hex()
    assert base64.b64decode(_signature_line(FIXED_SIGNED_CHECKPOINT).split(" ")[2])[:4] == expected


def test_verifier_key_round_trips() -> None:
    verifier = NoteVerifier.from_key(FIXED_VERIFIER_KEY)
    assert verifier == signer_from_seed(LOG, FIXED_SEED).verifier()
    assert verifier.key() == FIXED_VERIFIER_KEY


def test_private_key_is_stored_as_its_seed() -> None:
    signer = generate_signer(LOG)
    seed = private_key_bytes(signer)
    assert len(seed) == 32
    assert signer_from_seed(LOG, seed).verifier_key() == signer.verifier_key()
    assert private_key_bytes(signer_from_seed(LOG, FIXED_SEED)) == FIXED_SEED
    assert seed.hex() not in repr(signer)


# --- Round trip and forgeries -----------------------------------------------------------------


def test_sign_then_open_returns_the_body() -> None:
    signer = generate_signer(LOG)
    body = "line one\n\nline three after a blank line\n"
    assert open_note(signer.sign(body), signer.verifier()) == body


def test_a_tampered_body_is_rejected() -> None:
    signer = signer_from_seed(LOG, FIXED_SEED)
    forged = FIXED_SIGNED_CHECKPOINT.replace("\n8\n", "\n9\n")
    with pytest.raises(SignatureError) as caught:
        open_note(forged, signer.verifier())
    assert not isinstance(caught.value, MalformedNoteError)
    assert caught.value.key_name == LOG


def test_a_note_by_another_key_is_rejected() -> None:
    impostor = generate_signer(LOG)
    note = impostor.sign("origin\n1\n" + base64.b64encode(ROOT_8).decode() + "\n")
    with pytest.raises(SignatureError):
        open_note(note, signer_from_seed(LOG, FIXED_SEED).verifier())
    same_key_other_name = signer_from_seed("other.example/log", FIXED_SEED)
    with pytest.raises(SignatureError):
        open_note(FIXED_SIGNED_CHECKPOINT, same_key_other_name.verifier())


def test_a_truncated_signature_is_rejected() -> None:
    verifier = signer_from_seed(LOG, FIXED_SEED).verifier()
    body, line = FIXED_SIGNED_CHECKPOINT.rsplit("\n\n", 1)
    prefix, encoded = line.rstrip("\n").rsplit(" ", 1)
    raw = base64.b64decode(encoded)
    for cut in (1, 32, len(raw) - 5):
        shortened = base64.b64encode(raw[:-cut]).decode()
        with pytest.raises(SignatureError):
            open_note(f"{body}\n\n{prefix} {shortened}\n", verifier)
    with pytest.raises(MalformedNoteError):
        open_note(FIXED_SIGNED_CHECKPOINT[:-1], verifier)
    with pytest.raises(MalformedNoteError):
        open_note(f"{body}\n\n{prefix} {encoded[:-1]}\n", verifier)


def test_a_bad_signature_by_the_trusted_key_spoils_the_note() -> None:
    signer = signer_from_seed(LOG, FIXED_SEED)
    good = FIXED_SIGNED_CHECKPOINT
    garbage = base64.b64encode(signer.key_id + bytes(64)).decode()
    with pytest.raises(SignatureError):
        open_note(f"{good}\u2014 {LOG} {garbage}\n", signer.verifier())


def test_signatures_by_unknown_keys_are_ignored() -> None:
    signer = signer_from_seed(LOG, FIXED_SEED)
    witness = generate_signer("witness.example/w1")
    rotated = generate_signer(LOG)
    witness_line = _signature_line(witness.sign(Checkpoint(LOG, 8, ROOT_8).body()))
    rotated_line = _signature_line(rotated.sign(Checkpoint(LOG, 8, ROOT_8).body()))
    body, ours = FIXED_SIGNED_CHECKPOINT.rsplit("\n\n", 1)
    cosigned = f"{body}\n\n{witness_line}{rotated_line}{ours}"
    assert open_note(cosigned, signer.verifier()) == body + "\n"
    assert open_note(cosigned, witness.verifier()) == body + "\n"
    # Only unknown signatures: nothing to trust.
    with pytest.raises(SignatureError):
        open_note(f"{body}\n\n{witness_line}", signer.verifier())


def test_malformed_notes_are_rejected() -> None:
    verifier = signer_from_seed(LOG, FIXED_SEED).verifier()
    body, line = FIXED_SIGNED_CHECKPOINT.rsplit("\n\n", 1)
    for text in [
        body + "\n" + line,  # no blank line before the signatures
        f"{body}\n\n{line.replace(chr(0x2014), '--')}",  # a hyphen pair is not an em dash
        f"{body}\n\n{line.replace(' ', '  ', 1)}",
        f"{body}\t\n\n{line}",  # a control character
        f"{body}\n\n{line}\n",  # an empty signature line
        f"{body}\n\n" + line * 101,  # more signatures than any verifier need read
    ]:
        with pytest.raises(MalformedNoteError):
            open_note(text, verifier)


def test_signing_refuses_what_cannot_be_a_note() -> None:
    signer = generate_signer(LOG)
    for body in ["", "no final newline", "bell\a\n", "lone surrogate \udc80\n"]:
        with pytest.raises(MalformedNoteError):
            signer.sign(body)


def test_key_names_and_keys_are_validated() -> None:
    for name in ["", "with space", "with+plus", "tab\tname", "nbsp\u00a0name"]:
        with pytest.raises(KeyFormatError):
            signer_from_seed(name, FIXED_SEED)
    with pytest.raises(KeyFormatError):
        signer_from_seed(LOG, FIXED_SEED[:31])
    name, key_id, typed_key = FIXED_VERIFIER_KEY.split("+", 2)
    wrong_type = base64.b64encode(b"\x02" + base64.b64decode(typed_key)[1:]).decode()
    for vkey in [
        f"{name}+{key_id}",
        f"{name}+{key_id[:7]}+{typed_key}",
        f"{name}+00000000+{typed_key}",
        f"other+{key_id}+{typed_key}",
        f"{name}+{key_id}+{wrong_type}",
        f"{name}+{key_id}+{typed_key[:-4]}",
        f"{name}+{key_id}+{typed_key}=",
    ]:
        with pytest.raises(KeyFormatError):
            NoteVerifier.from_key(vkey)


def test_every_failure_is_an_audit_error() -> None:
    assert issubclass(SignatureError, AuditError)
    assert issubclass(MalformedNoteError, SignatureError)
    assert issubclass(KeyFormatError, AuditError)
    assert issubclass(CheckpointFormatError, AuditError)


# --- Checkpoints ------------------------------------------------------------------------------


def test_checkpoint_body_is_three_lines_with_a_trailing_newline() -> None:
    body = Checkpoint(LOG, 8, ROOT_8).body()
    assert body == f"{LOG}\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    assert body.split("\n") == [LOG, "8", "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=", ""]
    assert Checkpoint(LOG, 0, hashlib.sha256(b"").digest()).body().split("\n")[1] == "0"


def test_the_c2sp_example_checkpoint_parses_and_prints_back() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    checkpoint = parse_checkpoint(body)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.body() == body


def test_a_signed_checkpoint_opens_and_parses() -> None:
    verifier = NoteVerifier.from_key(FIXED_VERIFIER_KEY)
    assert parse_checkpoint(open_note(FIXED_SIGNED_CHECKPOINT, verifier)) == Checkpoint(
        LOG, 8, ROOT_8
    )


def test_malformed_checkpoints_are_rejected() -> None:
    root = base64.b64encode(ROOT_8).decode()
    for body, line in [
        (f"{LOG}\n8\n{root}", 0),  # no final newline
        (f"{LOG}\n8\n{root}\nextension\n", 0),
        (f"{LOG}\n8\n", 0),
        (f"\n8\n{root}\n", 1),
        (f"{LOG}\n08\n{root}\n", 2),
        (f"{LOG}\n-1\n{root}\n", 2),
        (f"{LOG}\n+8\n{root}\n", 2),
        (f"{LOG}\n{2**64}\n{root}\n", 2),
        (f"{LOG}\n{'9' * 5000}\n{root}\n", 2),
        (f"{LOG}\n\u0668\n{root}\n", 2),  # a non-ASCII digit
        (f"{LOG}\n8\n{root[:-1]}\n", 3),
        (f"{LOG}\n8\n{base64.b64encode(ROOT_8[:31]).decode()}\n", 3),
    ]:
        with pytest.raises(CheckpointFormatError) as caught:
            parse_checkpoint(body)
        assert caught.value.line == line, body
    assert parse_checkpoint(f"{LOG}\n{2**64 - 1}\n{root}\n").size == 2**64 - 1


def test_a_checkpoint_that_could_not_be_written_is_refused() -> None:
    for origin, size, root_hash, line in [
        ("", 8, ROOT_8, 1),
        ("two\nlines", 8, ROOT_8, 1),
        (LOG, -1, ROOT_8, 2),
        (LOG, 2**64, ROOT_8, 2),
        (LOG, 8, ROOT_8[:16], 3),
    ]:
        with pytest.raises(CheckpointFormatError) as caught:
            Checkpoint(origin, size, root_hash)
        assert caught.value.line == line
