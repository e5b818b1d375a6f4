"""Private keys: which algorithms meshrules generates and accepts, and how they are written.

Keys are generated where they are used (the root on the management side, each intermediate in its
mesh's cluster) and serialized only into files written 0600 or into the mesh's own CA Secret.
Nothing here ever formats key bytes into a message.
"""

from __future__ import annotations

from enum import StrEnum

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from meshrules.errors import TrustError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# The RSA public exponent everyone uses; anything else is a red flag, not a preference.
_RSA_EXPONENT = 65537


class KeyType(StrEnum):
    """A key algorithm and size meshrules can generate and sign with."""

    ECDSA_P256 = "ECDSA_P256"
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"

    @property
    def label(self) -> str:
        """How messages name the key type (`ECDSA P-256`, `RSA 4096`)."""
        return "ECDSA P-256" if self is KeyType.ECDSA_P256 else f"RSA {self.value.removeprefix('RSA_')}"


ROOT_KEY_TYPES = frozenset({KeyType.ECDSA_P256, KeyType.RSA_4096})


def generate_key(key_type: KeyType) -> PrivateKey:
    """A new private key of ``key_type``."""
    if key_type is KeyType.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=_RSA_EXPONENT, key_size=int(key_type.value[4:]))


def key_type_of(public_key: CertificatePublicKeyTypes) -> KeyType | None:
    """The `KeyType` of a public key, or None when meshrules does not issue for that kind of key."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return KeyType.ECDSA_P256 if isinstance(public_key.curve, ec.SECP256R1) else None
    if isinstance(public_key, rsa.RSAPublicKey):
        try:
            return KeyType(f"RSA_{public_key.key_size}")
        except ValueError:
            return None
    return None


def describe_key(public_key: CertificatePublicKeyTypes) -> str:
    """A short human name of any public key (`ECDSA P-384`, `RSA 1024`, `Ed25519`) for messages."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curves = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"ECDSA {curves.get(public_key.curve.name, public_key.curve.name)}"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448"
    return "an unsupported key type"


def signature_hash(_key: PrivateKey) -> hashes.SHA256:
    """The digest meshrules signs with: SHA-256, which every mesh's TLS stack verifies."""
    return hashes.SHA256()


def key_to_pem(key: PrivateKey) -> bytes:
    """The key in the traditional unencrypted PEM form (SEC1 `EC PRIVATE KEY`, PKCS#1 for RSA).

    That is the form Linkerd's own install writes (`key.pem` in `linkerd-identity-issuer`) and that
    istiod and Go's `crypto/tls` read without conversion.
    """
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def load_key(pem: bytes | str, what: str) -> PrivateKey:
    """Read an unencrypted PEM private key; ``what`` names it in errors (a file or a Secret key)."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        # `from None`: the parser's error is about the key's bytes, and key material never goes
        # into an exception chain, however unlikely the parser is to quote it.
        raise TrustError(
            f"`{what}` is not an unencrypted PEM private key",
            code="MR0701",
            hint="write the key as PEM without a passphrase (`openssl pkey -in KEY -out KEY.pem`)",
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TrustError(
            f"`{what}` holds a key meshrules cannot sign with",
            code="MR0701",
            hint="use an ECDSA P-256 or RSA key",
        )
    return key


def same_public_key(a: CertificatePublicKeyTypes, b: CertificatePublicKeyTypes) -> bool:
    """Whether two public keys are the same key (compared by their DER encoding)."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(serialization.Encoding.DER, fmt) == b.public_bytes(serialization.Encoding.DER, fmt)
