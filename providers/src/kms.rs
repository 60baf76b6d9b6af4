//! KMS: encrypt and decrypt with a key named by a target (`aws-kms://`, `gcp-kms://`, …).
//!
//! No KMS provider is implemented yet: every call answers [`Error::UnsupportedKms`].

use crate::{Config, Error, Target};

/// Encrypts `plaintext` with the key `target` names.
pub async fn encrypt(
    _config: &Config,
    target: &Target,
    _plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    Err(Error::UnsupportedKms { scheme: target.scheme.clone() })
}

/// Decrypts `ciphertext` with the key `target` names.
pub async fn decrypt(
    _config: &Config,
    target: &Target,
    _ciphertext: &[u8],
) -> Result<Vec<u8>, Error> {
    Err(Error::UnsupportedKms { scheme: target.scheme.clone() })
}
