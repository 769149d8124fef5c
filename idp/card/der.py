"""The header of a DER/BER TLV, read from the first bytes of a card file.

A JPKI client learns how long a certificate is from the first few bytes of its EF: the outer
``SEQUENCE`` tag and its length. ``read_header`` decodes any tag (including the multi-byte
high-tag-number form) and any definite length (short or long form) from a prefix; everything a
card could put there that is not a usable length — an indefinite length, more length octets than
a card file can need, a length above the caller's cap, a prefix cut inside the header — is a
``CardContentError``, never an ``IndexError`` or a huge allocation.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp.card.errors import CardContentError

MAX_CERTIFICATE_LENGTH = 16 * 1024
"""The most a certificate EF may claim (header included). Real JPKI certificates are ~1.3-2 KB."""

MAX_TAG_OCTETS = 4
MAX_LENGTH_OCTETS = 4
SEQUENCE_TAG = 0x30
INDEFINITE_LENGTH = 0x80


@dataclass(frozen=True, slots=True)
class TlvHeader:
    """A decoded TLV header.

    ``tag`` holds the tag octets as one big-endian integer (``0x30`` for SEQUENCE, ``0x5F51``
    for a two-octet tag); ``header_length`` counts the tag and length octets; ``length`` is the
    length of the value alone.
    """

    tag: int
    header_length: int
    length: int

    @property
    def total_length(self) -> int:
        """Header plus value: how many bytes the whole TLV occupies."""
        return self.header_length + self.length


def read_header(prefix: bytes, *, max_total_length: int | None = None) -> TlvHeader:
    """Decode the TLV header at the start of ``prefix``.

    Only the header has to be present; the value may be cut off. ``max_total_length`` caps
    header + value (a larger claim is a ``CardContentError``).
    """
    position = 0

    def next_octet(what: str) -> int:
        nonlocal position
        if position >= len(prefix):
            raise CardContentError(f"TLV header truncated in the {what}")
        octet = prefix[position]
        position += 1
        return octet

    first = next_octet("tag")
    tag = first
    if first & 0x1F == 0x1F:  # high-tag-number form: continuation octets with bit 8 set
        while True:
            if position >= MAX_TAG_OCTETS:
                raise CardContentError("TLV tag longer than 4 octets")
            octet = next_octet("tag")
            tag = (tag << 8) | octet
            if not octet & 0x80:
                break

    length_octet = next_octet("length")
    if length_octet == INDEFINITE_LENGTH:
        raise CardContentError("TLV with an indefinite length (not DER)")
    if length_octet < 0x80:
        length = length_octet
    else:
        count = length_octet & 0x7F
        if count > MAX_LENGTH_OCTETS:
            raise CardContentError(f"TLV length in {count} octets: too large for a card file")
        length = 0
        for _ in range(count):
            length = (length << 8) | next_octet("length")

    header = TlvHeader(tag=tag, header_length=position, length=length)
    if max_total_length is not None and header.total_length > max_total_length:
        raise CardContentError(
            f"TLV claims {header.total_length} bytes, more than the {max_total_length} allowed"
        )
    return header


def certificate_length(prefix: bytes, *, max_length: int = MAX_CERTIFICATE_LENGTH) -> int:
    """Total DER length of the certificate whose first bytes are ``prefix``.

    The outer object must be a SEQUENCE with a definite length of at most ``max_length`` bytes
    (header included) and longer than its own header.
    """
    header = read_header(prefix, max_total_length=max_length)
    if header.tag != SEQUENCE_TAG:
        raise CardContentError(f"certificate does not start with a SEQUENCE (tag 0x{header.tag:X})")
    if header.length == 0:
        raise CardContentError("certificate is an empty SEQUENCE")
    return header.total_length
