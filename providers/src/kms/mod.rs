//! KMS: encrypt and decrypt with a key named by a target (`aws-kms://`, `gcp-kms://`,
//! `azure-kms://`), through each service's documented HTTP API.
//!
//! * [`aws`]: AWS KMS's JSON API, signed with SigV4 (object_store's signer), with the URI's
//!   keys or the host's credential chain, optionally through a chain of STS roles.
//! * [`gcp`]: Cloud KMS's REST API with a bearer token: `BEARER_TOKEN`, one obtained for the
//!   `CREDENTIALS` service account (the OAuth JWT-bearer flow), or application default
//!   credentials.
//! * [`azure`]: Azure Key Vault's REST API (RSA-OAEP-256) with a token from Microsoft Entra
//!   ID's client-credentials flow.
//!
//! Every error names the key as `scheme:///redacted` with the service's error code and
//! message; never a credential, a token, the plaintext or the key's path.

mod aws;
mod azure;
mod gcp;

use std::sync::Arc;
use std::time::Duration;

use crate::{Config, Error, ErrorKind, Target};

/// One KMS key, opened for a user: what CREATE validates and what wraps a backup's data key.
///
/// Its `Debug` shows the key's display form (`aws-kms:///redacted`), never a parameter.
#[derive(Clone)]
pub struct Kms {
    provider: Arc<Provider>,
    display: String,
}

/// The opened key of each scheme.
enum Provider {
    Aws(aws::Key),
    Gcp(gcp::Key),
    Azure(azure::Key),
}

impl std::fmt::Debug for Kms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kms").field("key", &self.display).finish_non_exhaustive()
    }
}

impl Kms {
    /// Opens the key `target` names: checks its parameters and builds the client, with no
    /// request to the service yet.
    pub fn open(config: &Config, target: &Target) -> Result<Self, Error> {
        let provider = match target.scheme.as_str() {
            "aws-kms" => Provider::Aws(aws::Key::open(target)?),
            "gcp-kms" => Provider::Gcp(gcp::Key::open(config, target)?),
            "azure-kms" => Provider::Azure(azure::Key::open(config, target)?),
            _ => return Err(Error::UnsupportedKms { scheme: target.scheme.clone() }),
        };
        Ok(Self { provider: Arc::new(provider), display: target.display() })
    }

    /// A stable name of the key, the same for every URI that names it (scheme, key path,
    /// vault or region where they pick the key), without credentials: backups record a hash
    /// of it to tell which of several keys wrapped their data key.
    pub fn key_identity(&self) -> String {
        match self.provider.as_ref() {
            Provider::Aws(key) => key.identity(),
            Provider::Gcp(key) => key.identity(),
            Provider::Azure(key) => key.identity(),
        }
    }

    /// `aws-kms:///redacted`: what messages may show.
    pub fn display(&self) -> String {
        self.display.clone()
    }

    /// Encrypts `plaintext` with this key.
    pub async fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        match self.provider.as_ref() {
            Provider::Aws(key) => key.encrypt(plaintext).await,
            Provider::Gcp(key) => key.encrypt(plaintext).await,
            Provider::Azure(key) => key.encrypt(plaintext).await,
        }
    }

    /// Decrypts `ciphertext` with this key.
    pub async fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
        match self.provider.as_ref() {
            Provider::Aws(key) => key.decrypt(ciphertext).await,
            Provider::Gcp(key) => key.decrypt(ciphertext).await,
            Provider::Azure(key) => key.decrypt(ciphertext).await,
        }
    }
}

/// Encrypts `plaintext` with the key `target` names.
pub async fn encrypt(config: &Config, target: &Target, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    Kms::open(config, target)?.encrypt(plaintext).await
}

/// Decrypts `ciphertext` with the key `target` names.
pub async fn decrypt(
    config: &Config,
    target: &Target,
    ciphertext: &[u8],
) -> Result<Vec<u8>, Error> {
    Kms::open(config, target)?.decrypt(ciphertext).await
}

/// The HTTP side every provider shares: one client, the key's display form for messages and
/// the secrets to keep out of them.
struct Http {
    client: reqwest::Client,
    location: String,
    secrets: Vec<String>,
}

impl Http {
    /// A client for the key `target` names, whose messages hide `secrets`.
    fn new(target: &Target, secrets: Vec<String>) -> Result<Self, Error> {
        crate::storage::cloud::install_tls();
        let location = target.display();
        // Fail fast: CREATE EXTERNAL CONNECTION waits on these requests.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::KmsRequest {
                location: location.clone(),
                operation: "client setup",
                cause: crate::error::cause_chain(&e),
            })?;
        Ok(Self { client, location, secrets })
    }

    /// A POST of `body` as JSON to `url`, with `token` as its bearer.
    fn post_json(
        &self,
        url: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::RequestBuilder {
        self.client
            .post(url)
            .bearer_auth(token)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }

    /// A POST of `pairs` as a form to `url`.
    fn post_form(&self, url: &str, pairs: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let body =
            url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        self.client
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
    }

    /// Sends `request`, answering the body of a 2xx answer, or the service's error.
    async fn send(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<bytes::Bytes, Error> {
        let response = request.send().await.map_err(|e| self.request_error(operation, e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| self.request_error(operation, e))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let (code, message) = refusal(status, &body);
        let kind = kind(&code, status);
        let answer = match message.is_empty() {
            true => format!("{status} {code}"),
            false => format!("{status} {code}: {}", self.redact(&message)),
        };
        Err(Error::KmsService { location: self.location.clone(), operation, answer, kind })
    }

    /// Sends `request` and reads its JSON answer.
    async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, Error> {
        let body = self.send(operation, request).await?;
        serde_json::from_slice(&body).map_err(|e| self.bad_answer(operation, e.to_string()))
    }

    /// An answer that is not what the API documents.
    fn bad_answer(&self, operation: &'static str, reason: String) -> Error {
        Error::KmsResponse { location: self.location.clone(), operation, reason }
    }

    /// Credentials that could not be found or used.
    fn no_credentials(&self, reason: impl std::fmt::Display) -> Error {
        Error::KmsCredentials {
            location: self.location.clone(),
            reason: self.redact(&reason.to_string()),
        }
    }

    fn request_error(&self, operation: &'static str, e: reqwest::Error) -> Error {
        let location = self.location.clone();
        let unreachable = e.is_connect() || e.is_timeout();
        let cause = self.redact(&crate::error::cause_chain(&e.without_url()));
        if unreachable {
            Error::Unreachable { location, operation, cause }
        } else {
            Error::KmsRequest { location, operation, cause }
        }
    }

    fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(text.to_owned(), |t, secret| t.replace(secret.as_str(), "redacted"))
    }
}

/// The error code and message of a service's error answer, in whichever documented shape it
/// came: Google's and Key Vault's `{"error":{…}}`, OAuth's `{"error":"…",
/// "error_description":"…"}`, AWS JSON's `{"__type":"…","message":"…"}`, or AWS XML's
/// `<Code>…</Code><Message>…</Message>`.
fn refusal(status: u16, body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let str_at = |pointer: &str| json.pointer(pointer).and_then(|v| v.as_str()).map(str::to_owned);
    let code = str_at("/error/status")
        .or_else(|| str_at("/error/code"))
        .or_else(|| str_at("/error"))
        .or_else(|| str_at("/__type").map(|t| t.rsplit('#').next().unwrap_or_default().to_owned()))
        .or_else(|| xml_tag(&text, "Code"));
    let message = str_at("/error/message")
        .or_else(|| str_at("/error_description"))
        .or_else(|| str_at("/message"))
        .or_else(|| str_at("/Message"))
        .or_else(|| xml_tag(&text, "Message"));
    match (code, message) {
        (Some(code), message) => (code, message.unwrap_or_default()),
        // Not a documented shape (a proxy's page): show its start.
        (None, _) => (format!("(HTTP {status})"), text.chars().take(200).collect()),
    }
}

/// What a service's error code means, by its status where the code is not known.
fn kind(code: &str, status: u16) -> ErrorKind {
    const NOT_FOUND: &[&str] = &["NotFoundException", "NOT_FOUND", "KeyNotFound"];
    const DENIED: &[&str] = &[
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "ExpiredTokenException",
        "ExpiredToken",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "Unauthorized",
        "Forbidden",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
    ];
    const INVALID: &[&str] = &[
        "InvalidCiphertextException",
        "IncorrectKeyException",
        "InvalidKeyUsageException",
        "ValidationException",
        "DisabledException",
        "KMSInvalidStateException",
        "InvalidArnException",
        "INVALID_ARGUMENT",
        "FAILED_PRECONDITION",
        "BadParameter",
        "invalid_request",
    ];
    if NOT_FOUND.contains(&code) {
        ErrorKind::NotFound
    } else if DENIED.contains(&code) {
        ErrorKind::PermissionDenied
    } else if INVALID.contains(&code) {
        ErrorKind::InvalidArgument
    } else {
        match status {
            400 => ErrorKind::InvalidArgument,
            401 | 403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            _ => ErrorKind::Unavailable,
        }
    }
}

/// The text of the first `<name>…</name>` in `text`.
fn xml_tag(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{name}>"))? + start;
    Some(text[start..end].to_owned())
}

/// Standard base64, as AWS and Google carry bytes in JSON.
fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes a standard base64 field of `operation`'s answer.
fn unb64(http: &Http, operation: &'static str, field: &str, value: &str) -> Result<Vec<u8>, Error> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|e| http.bad_answer(operation, format!("{field} is not base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host awaits these on a multi-threaded runtime.
    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: T) {}
        let (config, target) = (Config::default(), Target::new("aws-kms", "", "k"));
        send(encrypt(&config, &target, b""));
        send(decrypt(&config, &target, b""));
        if let Ok(kms) = Kms::open(&config, &target) {
            send(kms.encrypt(b""));
            send(kms.decrypt(b""));
        }
        fn sync<T: Send + Sync>() {}
        sync::<Kms>();
    }

    #[test]
    fn refusals_read_every_documented_shape() {
        let rows: &[(u16, &str, &str, &str, ErrorKind)] = &[
            (
                400,
                r#"{"__type":"com.amazonaws.kms#NotFoundException","message":"Invalid keyId"}"#,
                "NotFoundException",
                "Invalid keyId",
                ErrorKind::NotFound,
            ),
            (
                400,
                r#"{"__type":"AccessDeniedException","Message":""}"#,
                "AccessDeniedException",
                "",
                ErrorKind::PermissionDenied,
            ),
            (
                403,
                "<ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>bad</Message></Error></ErrorResponse>",
                "InvalidClientTokenId",
                "bad",
                ErrorKind::PermissionDenied,
            ),
            (
                400,
                r#"{"error":{"code":400,"message":"Decryption failed","status":"INVALID_ARGUMENT"}}"#,
                "INVALID_ARGUMENT",
                "Decryption failed",
                ErrorKind::InvalidArgument,
            ),
            (
                404,
                r#"{"error":{"code":"KeyNotFound","message":"A key with (name/id) k was not found"}}"#,
                "KeyNotFound",
                "A key with (name/id) k was not found",
                ErrorKind::NotFound,
            ),
            (
                401,
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret"}"#,
                "invalid_client",
                "AADSTS7000215: Invalid client secret",
                ErrorKind::PermissionDenied,
            ),
            (
                502,
                "<html>bad gateway</html>",
                "(HTTP 502)",
                "<html>bad gateway</html>",
                ErrorKind::Unavailable,
            ),
            (403, "", "(HTTP 403)", "", ErrorKind::PermissionDenied),
        ];
        for (status, body, code, message, expected) in rows {
            let (c, m) = refusal(*status, body.as_bytes());
            assert_eq!((c.as_str(), m.as_str()), (*code, *message), "{body}");
            assert_eq!(kind(&c, *status), *expected, "{body}");
        }
    }
}
