//! Envelope encryption of backups: one random data key per chain, AES-256-GCM on every chunk
//! and on the manifest, the data key stored in the manifest wrapped by each key the user gave.
//!
//! From the data key two subkeys are derived (HMAC-SHA256 of a label), one for AES-256-GCM
//! and one naming chunks: an encrypted chunk's name is HMAC-SHA256(name key, plaintext), so
//! equal content under one data key is stored once while names reveal no plaintext hash, and
//! chunks of another data key or of plaintext backups never match. A sealed object is
//! `nonce (12 random bytes) ‖ ciphertext ‖ tag (16)`, its associated data naming what it is
//! (the chunk's name, the manifest's key), so objects cannot be swapped. Random 96-bit nonces
//! stay far from their collision bound: 2^32 objects per data key are 16 PiB of 4 MiB chunks.
//!
//! The data key never leaves this module in plaintext: it is not serialized, not printed
//! ([`DataKey`]'s `Debug` shows its id only), and errors say which key failed, never a byte
//! of it.
//!
//! With KMS keys (`WITH kms = …`) each key wraps the data key by its own KMS's encrypt call, an
//! entry of [`Encryption::kms`](super::manifest::Encryption::kms) each: any one of them opens
//! the backup. The wrapped plaintext is the data key behind a label naming the chain's key id,
//! so a wrap cannot be moved to another chain. Entries name their key by a SHA-256 of its
//! credential-free identity ([`Kms::key_identity`]), never by a URI.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Error;
use super::manifest::{Encryption, KmsKey, PassphraseKey};
use crate::kms::Kms;

/// The cipher of every sealed object, as manifests name it.
pub const SCHEME: &str = "AES-256-GCM";
/// The passphrase's key derivation, as manifests name it.
pub const KDF: &str = "PBKDF2-HMAC-SHA256";
/// PBKDF2 rounds for new backups: OWASP's 2023 figure for HMAC-SHA256 (about 0.2 s).
pub const PBKDF2_ITERATIONS: u32 = 600_000;
/// The most rounds a manifest may ask for: a tampered manifest must not hang a restore.
const MAX_ITERATIONS: u32 = 10_000_000;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const SALT_LEN: usize = 16;

/// The key that seals a new backup or opens an existing one (`WITH encryption_passphrase`).
/// Its `Debug` output never shows the secret.
#[derive(Clone)]
#[non_exhaustive]
pub enum EncryptionKey {
    /// A passphrase; the key encrypting the data key is derived from it with [`KDF`].
    Passphrase(String),
    /// KMS keys (`WITH kms = …`, one or more): each wraps a new backup's data key; any one of
    /// them opens an existing backup.
    Kms(Vec<Kms>),
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Passphrase(_) => f.write_str("Passphrase(*****)"),
            Self::Kms(keys) => f.debug_tuple("Kms").field(keys).finish(),
        }
    }
}

impl EncryptionKey {
    /// The SQL option that gives this kind of key, for messages.
    pub fn option(&self) -> &'static str {
        match self {
            Self::Passphrase(_) => "encryption_passphrase",
            Self::Kms(_) => "kms",
        }
    }
}

/// A backup chain's data key, ready to seal and open; built from random bytes or unwrapped.
pub(crate) struct DataKey {
    /// Names the data key in manifests and in chunk paths (`data/<id>/…`): random, not derived.
    pub id: String,
    cipher: Aes256Gcm,
    names: Hmac<Sha256>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl DataKey {
    /// A fresh data key from the OS, and the manifest's `encryption` field wrapping it by `key`.
    /// PBKDF2 runs on a blocking thread; each KMS key is one encrypt request.
    pub async fn generate(key: &EncryptionKey) -> Result<(Self, Encryption), Error> {
        let mut bytes = [0u8; 32];
        let mut id = [0u8; 16];
        random(&mut bytes)?;
        random(&mut id)?;
        let id = super::chunks::hex(&id);
        let header = match key {
            EncryptionKey::Passphrase(passphrase) => {
                let (passphrase, id) = (passphrase.clone(), id.clone());
                super::blocking("key derivation", move || {
                    passphrase_header(&passphrase, &id, &bytes)
                })
                .await?
            }
            EncryptionKey::Kms(keys) => {
                let mut wraps = Vec::with_capacity(keys.len());
                for kms in keys {
                    let wrapped =
                        kms.encrypt(&kms_plaintext(&id, &bytes)).await.map_err(|source| {
                            Error::KmsWrap { key: kms.display(), source: Box::new(source) }
                        })?;
                    wraps.push(KmsKey {
                        scheme: kms_scheme(kms),
                        key_hash: key_hash(kms),
                        wrapped_key: BASE64.encode(wrapped),
                    });
                }
                Encryption {
                    scheme: SCHEME.to_owned(),
                    key_id: id.clone(),
                    passphrase: None,
                    kms: wraps,
                }
            }
        };
        Ok((Self::from_bytes(id, &bytes), header))
    }

    /// Unwraps the data key of `header` (the manifest at `backup`) with `key`: PBKDF2 on a
    /// blocking thread, or a decrypt request to the first given KMS key that wrapped it.
    pub async fn open(
        header: &Encryption,
        key: &EncryptionKey,
        backup: &str,
    ) -> Result<Self, Error> {
        if header.scheme != SCHEME {
            return Err(Error::UnsupportedEncryption {
                backup: backup.to_owned(),
                scheme: header.scheme.clone(),
            });
        }
        match key {
            EncryptionKey::Passphrase(passphrase) => {
                let (header, passphrase) = (header.clone(), passphrase.clone());
                let backup = backup.to_owned();
                super::blocking("key derivation", move || {
                    Self::open_passphrase(&header, &passphrase, &backup)
                })
                .await
            }
            EncryptionKey::Kms(keys) => Self::open_kms(header, keys, backup).await,
        }
    }

    async fn open_kms(header: &Encryption, keys: &[Kms], backup: &str) -> Result<Self, Error> {
        let corrupt = |what: &str| Error::CorruptEncryption {
            backup: backup.to_owned(),
            reason: what.to_owned(),
        };
        let mut last = None;
        for kms in keys {
            let hash = key_hash(kms);
            let Some(wrap) = header.kms.iter().find(|w| w.key_hash == hash) else { continue };
            let wrapped = BASE64
                .decode(&wrap.wrapped_key)
                .map_err(|_| corrupt("a wrapped key is not base64"))?;
            match kms.decrypt(&wrapped).await {
                Ok(plain) => {
                    let bytes = plain
                        .strip_prefix(kms_label(&header.key_id).as_slice())
                        .filter(|b| b.len() == 32)
                        .ok_or_else(|| {
                            corrupt("a KMS key unwrapped something else than its data key")
                        })?;
                    return Ok(Self::from_bytes(header.key_id.clone(), bytes));
                }
                Err(source) => {
                    last = Some(Error::KmsUnwrap {
                        key: kms.display(),
                        backup: backup.to_owned(),
                        source: Box::new(source),
                    })
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            if header.kms.is_empty() {
                Error::NoKmsWrap { backup: backup.to_owned() }
            } else {
                Error::KmsKeyNotUsed {
                    backup: backup.to_owned(),
                    given: keys.iter().map(Kms::display).collect::<Vec<_>>().join(", "),
                }
            }
        }))
    }

    /// Unwraps with a passphrase. Blocking: PBKDF2.
    fn open_passphrase(header: &Encryption, passphrase: &str, backup: &str) -> Result<Self, Error> {
        let Some(wrap) = &header.passphrase else {
            return Err(Error::NoPassphraseWrap { backup: backup.to_owned() });
        };
        let corrupt = |what: &str| Error::CorruptEncryption {
            backup: backup.to_owned(),
            reason: what.to_owned(),
        };
        if wrap.kdf != KDF {
            return Err(Error::UnsupportedEncryption {
                backup: backup.to_owned(),
                scheme: wrap.kdf.clone(),
            });
        }
        if wrap.iterations == 0 || wrap.iterations > MAX_ITERATIONS {
            return Err(corrupt("the iteration count is out of range"));
        }
        let salt = BASE64.decode(&wrap.salt).map_err(|_| corrupt("the salt is not base64"))?;
        let wrapped = BASE64
            .decode(&wrap.wrapped_key)
            .map_err(|_| corrupt("the wrapped key is not base64"))?;
        let kek = derive(passphrase, &salt, wrap.iterations);
        let bytes = open(&kek, &wrap_aad(&header.key_id), &wrapped)
            .filter(|b| b.len() == 32)
            .ok_or_else(|| Error::WrongPassphrase { backup: backup.to_owned() })?;
        Ok(Self::from_bytes(header.key_id.clone(), &bytes))
    }

    fn from_bytes(id: String, bytes: &[u8]) -> Self {
        let subkey = |label: &[u8]| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes).expect("any key length");
            mac.update(label);
            mac.finalize().into_bytes()
        };
        let cipher = Aes256Gcm::new(&subkey(b"extconn-backup v1 encryption"));
        let names =
            <Hmac<Sha256> as Mac>::new_from_slice(&subkey(b"extconn-backup v1 chunk names"))
                .expect("any key length");
        Self { id, cipher, names }
    }

    /// The name of a chunk of content `data`: HMAC-SHA256 under the name subkey, hex.
    pub fn chunk_name(&self, data: &[u8]) -> String {
        let mut mac = self.names.clone();
        mac.update(data);
        super::chunks::hex(&mac.finalize().into_bytes())
    }

    /// Seals chunk `name`.
    pub fn seal_chunk(&self, name: &str, data: &[u8]) -> Result<Vec<u8>, Error> {
        seal_with(&self.cipher, &self.aad("chunk", name), data)
    }

    /// Opens chunk `name`; `None` if it fails authentication.
    pub fn open_chunk(&self, name: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.cipher, &self.aad("chunk", name), sealed)
    }

    /// Seals the manifest stored at `key`.
    pub fn seal_manifest(&self, key: &str, json: &[u8]) -> Result<Vec<u8>, Error> {
        seal_with(&self.cipher, &self.aad("manifest", key), json)
    }

    /// Opens the manifest stored at `key`; `None` if it fails authentication.
    pub fn open_manifest(&self, key: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.cipher, &self.aad("manifest", key), sealed)
    }

    fn aad(&self, what: &str, name: &str) -> Vec<u8> {
        format!("extconn-backup v1 {what}\0{}\0{name}", self.id).into_bytes()
    }
}

/// The `encryption` field of a data key wrapped by `passphrase`. Blocking: PBKDF2.
fn passphrase_header(passphrase: &str, id: &str, bytes: &[u8; 32]) -> Result<Encryption, Error> {
    let mut salt = [0u8; SALT_LEN];
    random(&mut salt)?;
    let kek = derive(passphrase, &salt, PBKDF2_ITERATIONS);
    let wrapped = seal(&kek, &wrap_aad(id), bytes)?;
    Ok(Encryption {
        scheme: SCHEME.to_owned(),
        key_id: id.to_owned(),
        passphrase: Some(PassphraseKey {
            kdf: KDF.to_owned(),
            iterations: PBKDF2_ITERATIONS,
            salt: BASE64.encode(salt),
            wrapped_key: BASE64.encode(wrapped),
        }),
        kms: Vec::new(),
    })
}

/// What a KMS key encrypts: the data key behind a label naming its chain's key id.
fn kms_plaintext(key_id: &str, bytes: &[u8; 32]) -> Vec<u8> {
    let mut plain = kms_label(key_id);
    plain.extend_from_slice(bytes);
    plain
}

fn kms_label(key_id: &str) -> Vec<u8> {
    format!("extconn-backup v1 data key\0{key_id}\0").into_bytes()
}

/// How manifests name a KMS key: SHA-256 of its credential-free identity, hex.
fn key_hash(kms: &Kms) -> String {
    super::chunks::sha256_hex(
        format!("extconn-backup v1 kms key\0{}", kms.key_identity()).as_bytes(),
    )
}

/// The KMS key's scheme (`aws-kms`), for people reading a manifest.
fn kms_scheme(kms: &Kms) -> String {
    kms.display().split("://").next().unwrap_or_default().to_owned()
}

fn wrap_aad(key_id: &str) -> Vec<u8> {
    format!("extconn-backup v1 data key\0{key_id}").into_bytes()
}

fn random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|_| Error::Random)
}

/// The key-encryption key of `passphrase`.
fn derive(passphrase: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(passphrase.as_bytes(), salt, iterations)
}

fn seal(key: &[u8; 32], aad: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
    seal_with(&Aes256Gcm::new(key.into()), aad, data)
}

fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    open_with(&Aes256Gcm::new(key.into()), aad, sealed)
}

fn seal_with(cipher: &Aes256Gcm, aad: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce)?;
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: data, aad })
        .map_err(|_| Error::Task { task: "encryption" })?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open_with(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<F: std::future::Future>(future: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(future)
    }

    #[test]
    fn data_keys_round_trip_and_refuse_the_wrong_passphrase() {
        let right = EncryptionKey::Passphrase("correct horse".into());
        let (key, header) = block(DataKey::generate(&right)).unwrap();
        let sealed = key.seal_chunk("a", b"hello").unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 5 + TAG_LEN);

        let reopened = block(DataKey::open(&header, &right, "/b")).unwrap();
        assert_eq!(reopened.open_chunk("a", &sealed).as_deref(), Some(&b"hello"[..]));
        assert_eq!(reopened.chunk_name(b"hello"), key.chunk_name(b"hello"));
        // Another chunk's identity, a flipped bit: authentication fails.
        assert_eq!(reopened.open_chunk("b", &sealed), None);
        let mut flipped = sealed.clone();
        flipped[NONCE_LEN] ^= 1;
        assert_eq!(reopened.open_chunk("a", &flipped), None);

        let wrong = EncryptionKey::Passphrase("battery staple".into());
        let err = block(DataKey::open(&header, &wrong, "/b")).unwrap_err();
        assert!(matches!(err, Error::WrongPassphrase { .. }), "{err}");
        assert!(!format!("{key:?}{wrong:?}").contains("staple"));
    }

    #[test]
    fn names_depend_on_the_data_key() {
        let pass = EncryptionKey::Passphrase("p".into());
        let (a, _) = block(DataKey::generate(&pass)).unwrap();
        let (b, _) = block(DataKey::generate(&pass)).unwrap();
        assert_ne!(a.chunk_name(b"x"), b.chunk_name(b"x"));
        assert_ne!(a.chunk_name(b"x"), super::super::chunks::sha256_hex(b"x"));
    }
}
