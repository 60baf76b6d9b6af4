//! The fake Google service account the GCS and Cloud KMS fakes share (`gcs_server.rs`,
//! `kms_servers.rs`): its key file, its RS256 JWTs checked against its key, and the OAuth
//! token endpoint's
//! [JWT-bearer grant](https://developers.google.com/identity/protocols/oauth2/service-account#httprest).
//! Included by each fake next to its `fake_http` module.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::fake_http::Request;

/// The fake service account's private key (PKCS#8 PEM, generated for these tests only: it
/// signs nothing but the fakes' JWTs).
pub const SERVICE_ACCOUNT_KEY: &str = include_str!("fake-service-account-key.pem");
/// The fake service account's email.
pub const SERVICE_ACCOUNT_EMAIL: &str = "extconn-test@extconn-test.iam.gserviceaccount.com";
/// The fake service account's key id (`private_key_id`, a self-signed JWT's `kid`).
pub const SERVICE_ACCOUNT_KEY_ID: &str = "fake-key-1";

/// The service account's key file, its `token_uri` at `{server}/token`.
pub fn key_file(server: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": "extconn-test",
        "private_key_id": SERVICE_ACCOUNT_KEY_ID,
        "private_key": SERVICE_ACCOUNT_KEY,
        "client_email": SERVICE_ACCOUNT_EMAIL,
        "token_uri": format!("{server}/token"),
    })
    .to_string()
}

/// `bytes` random bytes, hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("OS randomness");
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

/// The header and claims of `jwt` if the service account's key signed it (RS256).
pub fn verify_jwt(jwt: &str) -> Option<(Value, Value)> {
    let (message, signature) = jwt.rsplit_once('.')?;
    let (header, claims) = message.split_once('.')?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header["alg"] != "RS256" {
        return None;
    }
    let pem: String = SERVICE_ACCOUNT_KEY.lines().filter(|l| !l.starts_with("-----")).collect();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&STANDARD.decode(pem).ok()?).ok()?;
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        ring::signature::KeyPair::public_key(&pair).as_ref().to_vec(),
    );
    public.verify(message.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).ok()?).ok()?;
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
    Some((header, claims))
}

/// The JWT-bearer grant of a token request: the assertion's claims when it is an RS256 JWT
/// of the service account for this server's token endpoint, else the error to answer
/// (status and Google's JSON body).
pub fn jwt_bearer_claims(request: &Request) -> Result<Value, (u16, Value)> {
    let invalid = |description: &str| {
        (400, json!({ "error": "invalid_grant", "error_description": description }))
    };
    let form = request.form();
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return Err((400, json!({ "error": "unsupported_grant_type" })));
    }
    let Some((_, claims)) = form.get("assertion").and_then(|jwt| verify_jwt(jwt)) else {
        return Err(invalid("Invalid JWT Signature."));
    };
    let host = request.header("host").unwrap_or_default();
    let audience_ok = claims["aud"].as_str() == Some(&format!("http://{host}/token"));
    if claims["iss"] != SERVICE_ACCOUNT_EMAIL || !audience_ok {
        return Err(invalid(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe",
        ));
    }
    Ok(claims)
}

/// A token the endpoint issues.
pub fn issued_token() -> String {
    format!("ya29.issued-{}", random_hex(16))
}

/// The token endpoint's answer for `token`.
pub fn token_answer(token: &str) -> Value {
    json!({ "access_token": token, "token_type": "Bearer", "expires_in": 3599 })
}
