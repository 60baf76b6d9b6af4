//! In-process fakes of Google Cloud KMS and Azure Key Vault for the KMS tests: HTTP/1.1 on
//! 127.0.0.1, speaking each service's documented encrypt/decrypt wire format and token flow.
//!
//! * [`GcpKmsServer`] emulates Cloud KMS v1's
//!   [`cryptoKeys.encrypt`](https://cloud.google.com/kms/docs/reference/rest/v1/projects.locations.keyRings.cryptoKeys/encrypt)
//!   and [`cryptoKeys.decrypt`](https://cloud.google.com/kms/docs/reference/rest/v1/projects.locations.keyRings.cryptoKeys/decrypt)
//!   (`POST /v1/{name}:encrypt` with `{"plaintext"}` → `{"name","ciphertext"}`, and back),
//!   Google's [error shape](https://cloud.google.com/apis/design/errors#http_mapping)
//!   (`{"error":{"code","message","status"}}`), bearer tokens, and the OAuth token endpoint's
//!   [JWT-bearer grant for service accounts](https://developers.google.com/identity/protocols/oauth2/service-account#httprest)
//!   (RS256 JWTs checked against the fake account's public key).
//! * [`AzureKeyVaultServer`] emulates Key Vault 7.4's
//!   [`encrypt`](https://learn.microsoft.com/en-us/rest/api/keyvault/keys/encrypt/encrypt?view=rest-keyvault-keys-7.4)
//!   and [`decrypt`](https://learn.microsoft.com/en-us/rest/api/keyvault/keys/decrypt/decrypt?view=rest-keyvault-keys-7.4)
//!   (`POST /keys/{name}/{version}/encrypt?api-version=7.4` with `{"alg","value"}`, base64url
//!   → `{"kid","value"}`), its [error shape](https://learn.microsoft.com/en-us/rest/api/keyvault/keys/encrypt/encrypt?view=rest-keyvault-keys-7.4#keyvaulterror)
//!   (`{"error":{"code","message"}}`), and Microsoft Entra ID's
//!   [client-credentials grant](https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow)
//!   (`POST /{tenant}/oauth2/v2.0/token`).
//!
//! Both really encrypt: AES-256-GCM under a random secret per key, so a ciphertext decrypts
//! only under the key that made it (not RSA-OAEP for Key Vault: the wire format is what is
//! emulated, not the algorithm). Each connection serves one request (`Connection: close`).
//! Only tokio, serde_json, base64, aes-gcm, getrandom and ring are used, so that host tests
//! can include this file too (`#[path = "../../providers/tests/support/kms_servers.rs"]`).
#![allow(dead_code)]

#[path = "fake_http.rs"]
mod fake_http;
#[path = "google_account.rs"]
mod google_account;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use fake_http::Request;
use google_account::random_hex;

/// What a fake's handler answers: status and JSON body.
type Answer = (u16, Value);

/// Serves a JSON handler (see [`fake_http::serve`]).
async fn serve<H>(handle: H) -> String
where
    H: Fn(Request) -> Answer + Send + Sync + 'static,
{
    fake_http::serve(move |request| {
        let (status, body) = handle(request);
        fake_http::Answer::json(status, body)
    })
    .await
}

/// Keys by name, each an AES-256-GCM secret: what both fakes encrypt with.
#[derive(Default)]
struct Keyring {
    keys: HashMap<String, [u8; 32]>,
}

impl Keyring {
    fn add(&mut self, name: &str) {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("OS randomness");
        self.keys.insert(name.to_owned(), secret);
    }

    /// `nonce || AES-GCM(plaintext)`, with the key's name as associated data.
    fn seal(&self, name: &str, plaintext: &[u8]) -> Option<Vec<u8>> {
        let cipher = Aes256Gcm::new_from_slice(self.keys.get(name)?).ok()?;
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).ok()?;
        let payload = aes_gcm::aead::Payload { msg: plaintext, aad: name.as_bytes() };
        let sealed = cipher.encrypt(Nonce::from_slice(&nonce), payload).ok()?;
        Some([nonce.as_slice(), &sealed].concat())
    }

    /// The plaintext, or `None` when `ciphertext` was not made by this key.
    fn open(&self, name: &str, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let cipher = Aes256Gcm::new_from_slice(self.keys.get(name)?).ok()?;
        let (nonce, sealed) = ciphertext.split_at_checked(12)?;
        let payload = aes_gcm::aead::Payload { msg: sealed, aad: name.as_bytes() };
        cipher.decrypt(Nonce::from_slice(nonce), payload).ok()
    }
}

/// Shared state of a fake: its keys and the tokens it accepts.
#[derive(Default)]
struct State {
    keyring: Keyring,
    tokens: Vec<String>,
    /// Requests served, by path (for tests that check a token flow happened).
    requests: Vec<String>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Cloud KMS

/// A fake Cloud KMS (v1 REST) with its OAuth token endpoint at `/token`.
pub struct GcpKmsServer {
    url: String,
    state: Shared,
}

impl GcpKmsServer {
    /// Starts a server on a fresh port; it accepts one bearer token from the start
    /// ([`Self::token`]) and issues more for the fake service account.
    pub async fn start() -> Self {
        let state: Shared = Arc::default();
        lock(&state).tokens.push(format!("ya29.fake-{}", random_hex(16)));
        let shared = state.clone();
        let url = serve(move |request| gcp_handle(&shared, request)).await;
        Self { url, state }
    }

    /// The base URL, what `Config::gcp_kms_endpoint` takes.
    pub fn endpoint(&self) -> String {
        self.url.clone()
    }

    /// Creates the key `resource` (`projects/…/cryptoKeys/k`).
    pub fn add_key(&self, resource: &str) {
        lock(&self.state).keyring.add(resource);
    }

    /// A bearer token the server accepts.
    pub fn token(&self) -> String {
        lock(&self.state).tokens[0].clone()
    }

    /// The fake service account's key file, with `token_uri` pointing at this server.
    pub fn service_account_json(&self) -> String {
        google_account::key_file(&self.url)
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        lock(&self.state).requests.iter().filter(|p| *p == path).count()
    }
}

fn gcp_error(code: u16, status: &str, message: &str) -> Answer {
    (code, json!({ "error": { "code": code, "message": message, "status": status } }))
}

fn gcp_handle(state: &Shared, request: Request) -> Answer {
    lock(state).requests.push(request.path.clone());
    if request.method != "POST" {
        return gcp_error(405, "INVALID_ARGUMENT", "only POST is emulated");
    }
    if request.path == "/token" {
        return gcp_token(state, &request);
    }
    let authorized = request.bearer().is_some_and(|t| lock(state).tokens.iter().any(|k| k == t));
    if !authorized {
        return gcp_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential.",
        );
    }
    let Some(rest) = request.path.strip_prefix("/v1/") else {
        return gcp_error(404, "NOT_FOUND", "unknown method");
    };
    let Some((name, method)) = rest.rsplit_once(':') else {
        return gcp_error(404, "NOT_FOUND", "unknown method");
    };
    let state = lock(state);
    if !state.keyring.keys.contains_key(name) {
        return gcp_error(404, "NOT_FOUND", &format!("{name} not found."));
    }
    let body = request.json();
    let field = |f: &str| body.get(f).and_then(Value::as_str).and_then(|v| STANDARD.decode(v).ok());
    match method {
        "encrypt" => match field("plaintext").and_then(|p| state.keyring.seal(name, &p)) {
            Some(sealed) => (200, json!({ "name": name, "ciphertext": STANDARD.encode(sealed) })),
            None => gcp_error(400, "INVALID_ARGUMENT", "Invalid value at 'plaintext'"),
        },
        "decrypt" => match field("ciphertext").and_then(|c| state.keyring.open(name, &c)) {
            Some(plain) => (200, json!({ "plaintext": STANDARD.encode(plain) })),
            None => gcp_error(
                400,
                "INVALID_ARGUMENT",
                "Decryption failed: verify that 'name' refers to the correct CryptoKey.",
            ),
        },
        _ => gcp_error(404, "NOT_FOUND", "unknown method"),
    }
}

/// The JWT-bearer grant (`google_account`), for the `cloud-platform` scope.
fn gcp_token(state: &Shared, request: &Request) -> Answer {
    let claims = match google_account::jwt_bearer_claims(request) {
        Ok(claims) => claims,
        Err(answer) => return answer,
    };
    if !claims["scope"].as_str().unwrap_or_default().contains("cloud-platform") {
        return (400, json!({ "error": "invalid_scope" }));
    }
    let token = google_account::issued_token();
    lock(state).tokens.push(token.clone());
    (200, google_account::token_answer(&token))
}

// ---------------------------------------------------------------------------------------------
// Key Vault

/// A fake Azure Key Vault (REST 7.4) for one vault, with Entra ID's token endpoint.
///
/// The vault is addressed by path: [`Self::endpoint`] is `http://127.0.0.1:<port>/{vault}`,
/// so `Config::azure_kms_endpoint` puts the vault name in the first path segment, and a
/// request for another vault answers 404.
pub struct AzureKeyVaultServer {
    url: String,
    state: Shared,
    vault: String,
    tenant: String,
    client_id: String,
    client_secret: String,
}

impl AzureKeyVaultServer {
    /// Starts a server for the vault `vault`, with one registered client (see
    /// [`Self::tenant`], [`Self::client_id`], [`Self::client_secret`]).
    pub async fn start(vault: &str) -> Self {
        let state: Shared = Arc::default();
        let tenant = format!("tenant-{}", random_hex(4));
        let client_id = format!("client-{}", random_hex(4));
        let client_secret = format!("secret-{}", random_hex(12));
        let app = App {
            state: state.clone(),
            vault: vault.to_owned(),
            tenant: tenant.clone(),
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
        };
        let url = serve(move |request| app.handle(request)).await;
        Self { url, state, vault: vault.to_owned(), tenant, client_id, client_secret }
    }

    /// `http://127.0.0.1:<port>/{vault}`: what `Config::azure_kms_endpoint` takes.
    pub fn endpoint(&self) -> String {
        format!("{}/{{vault}}", self.url)
    }

    /// `http://127.0.0.1:<port>`: what `Config::azure_authority_host` takes.
    pub fn authority(&self) -> String {
        self.url.clone()
    }

    /// Creates the key `name` at `version`.
    pub fn add_key(&self, name: &str, version: &str) {
        lock(&self.state).keyring.add(&format!("{name}/{version}"));
    }

    /// The vault's name.
    pub fn vault(&self) -> String {
        self.vault.clone()
    }

    /// The registered client's tenant.
    pub fn tenant(&self) -> String {
        self.tenant.clone()
    }

    /// The registered client's id.
    pub fn client_id(&self) -> String {
        self.client_id.clone()
    }

    /// The registered client's secret.
    pub fn client_secret(&self) -> String {
        self.client_secret.clone()
    }

    /// How many requests reached a path ending in `suffix`.
    pub fn hits(&self, suffix: &str) -> usize {
        lock(&self.state).requests.iter().filter(|p| p.ends_with(suffix)).count()
    }
}

/// What the Key Vault fake's handler knows.
struct App {
    state: Shared,
    vault: String,
    tenant: String,
    client_id: String,
    client_secret: String,
}

fn vault_error(status: u16, code: &str, message: &str) -> Answer {
    (status, json!({ "error": { "code": code, "message": message } }))
}

impl App {
    fn handle(&self, request: Request) -> Answer {
        lock(&self.state).requests.push(request.path.clone());
        if request.method != "POST" {
            return vault_error(405, "BadParameter", "only POST is emulated");
        }
        if request.path == format!("/{}/oauth2/v2.0/token", self.tenant) {
            return self.token(&request);
        }
        if request.path.ends_with("/oauth2/v2.0/token") {
            let description = "AADSTS90002: Tenant not found.";
            return (400, json!({ "error": "invalid_request", "error_description": description }));
        }
        let authorized =
            request.bearer().is_some_and(|t| lock(&self.state).tokens.iter().any(|k| k == t));
        if !authorized {
            return vault_error(
                401,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
            );
        }
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        match segments[..] {
            [vault, "keys", name, version, operation] if vault == self.vault => {
                self.operate(&request, name, version, operation)
            }
            _ => vault_error(404, "NotFound", "no such vault or operation"),
        }
    }

    fn operate(&self, request: &Request, name: &str, version: &str, operation: &str) -> Answer {
        if request.param("api-version") != Some("7.4") {
            return vault_error(400, "BadParameter", "The specified version is not supported");
        }
        let key = format!("{name}/{version}");
        let state = lock(&self.state);
        if !state.keyring.keys.contains_key(&key) {
            let message = format!("A key with (name/id) {name} was not found in this key vault.");
            return vault_error(404, "KeyNotFound", &message);
        }
        let body = request.json();
        if body["alg"] != "RSA-OAEP-256" {
            return vault_error(400, "BadParameter", "Invalid algorithm");
        }
        let Some(value) = body["value"].as_str().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
        else {
            return vault_error(400, "BadParameter", "Property value is not base64url");
        };
        let result = match operation {
            "encrypt" => state.keyring.seal(&key, &value),
            "decrypt" => state.keyring.open(&key, &value),
            _ => return vault_error(404, "NotFound", "no such operation"),
        };
        match result {
            Some(out) => {
                let kid = format!("https://{}.vault.azure.net/keys/{key}", self.vault);
                (200, json!({ "kid": kid, "value": URL_SAFE_NO_PAD.encode(out) }))
            }
            None => vault_error(400, "BadParameter", "Error while decrypting: bad ciphertext"),
        }
    }

    /// The client-credentials grant for the registered client and Key Vault's scope.
    fn token(&self, request: &Request) -> Answer {
        let form = request.form();
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        if get("grant_type") != "client_credentials" {
            return (400, json!({ "error": "unsupported_grant_type" }));
        }
        if get("client_id") != self.client_id {
            let description = "AADSTS700016: Application not found in the directory.";
            return (
                400,
                json!({ "error": "unauthorized_client", "error_description": description }),
            );
        }
        if get("client_secret") != self.client_secret {
            let description = "AADSTS7000215: Invalid client secret provided.";
            return (401, json!({ "error": "invalid_client", "error_description": description }));
        }
        if get("scope") != "https://vault.azure.net/.default" {
            return (400, json!({ "error": "invalid_scope" }));
        }
        let token = format!("eyJ0eXAi.fake-{}", random_hex(16));
        lock(&self.state).tokens.push(token.clone());
        (200, json!({ "token_type": "Bearer", "expires_in": 3599, "access_token": token }))
    }
}
