//! `aws-kms:///<key id, ARN or alias>`: AWS KMS's JSON API (`TrentService.Encrypt` and
//! `TrentService.Decrypt`), signed with SigV4 by object_store's [`AwsAuthorizer`].
//!
//! `AUTH=specified` (the default) signs with `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN`; `AUTH=implicit` with the host's standard credential chain.
//! `ASSUME_ROLE=<arn>[;external_id=<id>],…` then assumes each role in turn through STS, each
//! with the credentials of the one before. `REGION` (else an ARN's region) picks the
//! endpoint; `AWS_ENDPOINT` replaces it, for KMS and STS alike.

use object_store::aws::{AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::client::{HttpRequest, HttpRequestBody};

use super::{Http, b64, unb64};
use crate::storage::cloud::Params;
use crate::{Error, Target};

const PROVIDER: &str = "aws-kms";
/// The session name STS records for the roles extconn assumes.
const SESSION_NAME: &str = "extconn-kms";

/// An opened `aws-kms://` key.
pub(super) struct Key {
    http: Http,
    key_id: String,
    region: String,
    /// Where KMS is; `None`: AWS's own endpoints for the region.
    endpoint: Option<String>,
    /// `None`: the host's credential chain.
    keys: Option<Keys>,
    roles: Vec<Role>,
}

/// Access keys, as given in the URI or returned by STS.
#[derive(Clone)]
struct Keys {
    id: String,
    secret: String,
    token: Option<String>,
}

/// One link of `ASSUME_ROLE`.
struct Role {
    arn: String,
    external_id: Option<String>,
}

#[derive(serde::Deserialize)]
struct EncryptOutput {
    #[serde(rename = "CiphertextBlob")]
    ciphertext: String,
}

#[derive(serde::Deserialize)]
struct DecryptOutput {
    #[serde(rename = "Plaintext")]
    plaintext: String,
}

impl Key {
    pub(super) fn open(target: &Target) -> Result<Self, Error> {
        let p = Params::new(target, PROVIDER);
        // A space in the secret is a `+` that the URI's query decoding turned into a space.
        let secret = p.get("AWS_SECRET_ACCESS_KEY").map(|s| s.replace(' ', "+"));
        let mut secrets = p.secrets(&["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]);
        secrets.extend(secret.clone());
        if target.path.is_empty() {
            return Err(p.invalid("key id", "must be the URI's path (aws-kms:///<key id>)"));
        }
        let region = match p.get("REGION") {
            Some(region) => region.to_owned(),
            None => arn_region(&target.path).ok_or_else(|| {
                p.invalid("REGION", "must be set: could not find the aws kms region")
            })?,
        };
        let keys = if p.implicit() {
            for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
                if p.get(name).is_some() {
                    return Err(p.invalid(name, "cannot be given with AUTH=implicit"));
                }
            }
            None
        } else {
            let (Some(id), Some(secret)) = (p.get("AWS_ACCESS_KEY_ID"), secret) else {
                return Err(p.invalid(
                    "AWS_ACCESS_KEY_ID",
                    "and AWS_SECRET_ACCESS_KEY must be set if AUTH is specified",
                ));
            };
            let token = p.get("AWS_SESSION_TOKEN").map(str::to_owned);
            if token.as_deref().is_some_and(|t| http::HeaderValue::from_str(t).is_err()) {
                return Err(p.invalid("AWS_SESSION_TOKEN", "is not a valid header value"));
            }
            Some(Keys { id: id.to_owned(), secret, token })
        };
        let roles = p.get("ASSUME_ROLE").map(roles).unwrap_or_default();
        Ok(Self {
            http: Http::new(target, secrets)?,
            key_id: target.path.clone(),
            region,
            endpoint: p.get("AWS_ENDPOINT").map(|e| e.trim_end_matches('/').to_owned()),
            keys,
            roles,
        })
    }

    /// `aws-kms:<region>:<key id>`.
    pub(super) fn identity(&self) -> String {
        format!("aws-kms:{}:{}", self.region, self.key_id)
    }

    pub(super) async fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let body = serde_json::json!({ "KeyId": self.key_id, "Plaintext": b64(plaintext) });
        let out: EncryptOutput = self.call("encrypt", "TrentService.Encrypt", &body).await?;
        unb64(&self.http, "encrypt", "CiphertextBlob", &out.ciphertext)
    }

    pub(super) async fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
        let body = serde_json::json!({ "KeyId": self.key_id, "CiphertextBlob": b64(ciphertext) });
        let out: DecryptOutput = self.call("decrypt", "TrentService.Decrypt", &body).await?;
        unb64(&self.http, "decrypt", "Plaintext", &out.plaintext)
    }

    /// One signed KMS request.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        action: &'static str,
        body: &serde_json::Value,
    ) -> Result<T, Error> {
        let keys = self.credentials().await?;
        let url = self.url("kms");
        let headers = [("x-amz-target", action), ("content-type", "application/x-amz-json-1.1")];
        let request = self.signed(&keys, "kms", &url, &headers, body.to_string().into_bytes())?;
        self.http.send_json(operation, request).await
    }

    /// The URI's keys or the host's, then each role of `ASSUME_ROLE` in turn.
    async fn credentials(&self) -> Result<Keys, Error> {
        let mut keys = match &self.keys {
            Some(keys) => keys.clone(),
            None => self.implicit().await?,
        };
        for role in &self.roles {
            keys = self.assume(&keys, role).await?;
        }
        Ok(keys)
    }

    /// The host's standard credential chain, as object_store's S3 client reads it.
    async fn implicit(&self) -> Result<Keys, Error> {
        let store = AmazonS3Builder::from_env()
            .with_bucket_name("extconn-kms")
            .with_region(&self.region)
            .build()
            .map_err(|e| self.http.no_credentials(e))?;
        let credential =
            store.credentials().get_credential().await.map_err(|e| self.http.no_credentials(e))?;
        Ok(Keys {
            id: credential.key_id.clone(),
            secret: credential.secret_key.clone(),
            token: credential.token.clone(),
        })
    }

    /// STS AssumeRole for `role`, signed with `keys`.
    async fn assume(&self, keys: &Keys, role: &Role) -> Result<Keys, Error> {
        let form = assume_role_form(role);
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        let url = self.url("sts");
        let request = self.signed(keys, "sts", &url, &headers, form.into_bytes())?;
        let body = self.http.send("AssumeRole", request).await?;
        let text = String::from_utf8_lossy(&body);
        let field = |name| {
            super::xml_tag(&text, name).ok_or_else(|| {
                self.http.bad_answer("AssumeRole", format!("no {name} in the answer"))
            })
        };
        Ok(Keys {
            id: field("AccessKeyId")?,
            secret: field("SecretAccessKey")?,
            token: Some(field("SessionToken")?),
        })
    }

    /// `AWS_ENDPOINT`, else AWS's endpoint of `service` in the key's region.
    fn url(&self, service: &str) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{endpoint}/"),
            None => format!("https://{service}.{}.amazonaws.com/", self.region),
        }
    }

    /// A POST of `body` to `url` with `headers`, signed for `service`.
    fn signed(
        &self,
        keys: &Keys,
        service: &str,
        url: &str,
        headers: &[(&'static str, &'static str)],
        body: Vec<u8>,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let invalid = |reason: String| Error::InvalidParameter {
            location: self.http.location.clone(),
            name: "AWS_ENDPOINT",
            reason,
        };
        let mut request = HttpRequest::new(HttpRequestBody::from(body.clone()));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = url.parse().map_err(|e| invalid(format!("is not a URL: {e}")))?;
        for (name, value) in headers {
            request.headers_mut().insert(*name, http::HeaderValue::from_static(value));
        }
        let credential = AwsCredential {
            key_id: keys.id.clone(),
            secret_key: keys.secret.clone(),
            token: keys.token.clone(),
        };
        AwsAuthorizer::new(&credential, service, &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| self.http.no_credentials(e))?;
        Ok(self.http.client.post(url).headers(request.headers().clone()).body(body))
    }
}

/// STS AssumeRole's form for `role` (built apart: the serializer is not `Send`).
fn assume_role_form(role: &Role) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", "AssumeRole")
        .append_pair("Version", "2011-06-15")
        .append_pair("RoleArn", &role.arn)
        .append_pair("RoleSessionName", SESSION_NAME);
    if let Some(id) = &role.external_id {
        form.append_pair("ExternalId", id);
    }
    form.finish()
}

/// The region of a key ARN, `arn:aws:kms:<region>:<account>:key/<id>`.
fn arn_region(key: &str) -> Option<String> {
    let mut fields = key.split(':');
    match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (Some("arn"), Some(_), Some("kms"), Some(region)) if !region.is_empty() => {
            Some(region.to_owned())
        }
        _ => None,
    }
}

/// `ASSUME_ROLE`: comma-separated roles, each `arn[;external_id=<id>]`, assumed in order.
fn roles(value: &str) -> Vec<Role> {
    value
        .split(',')
        .filter(|role| !role.trim().is_empty())
        .map(|role| {
            let mut parts = role.split(';');
            let arn = parts.next().unwrap_or_default().trim().to_owned();
            let external_id =
                parts.find_map(|p| p.trim().strip_prefix("external_id=")).map(str::to_owned);
            Role { arn, external_id }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_come_from_arns() {
        let rows = [
            ("arn:aws:kms:eu-west-1:123456789012:key/abc", Some("eu-west-1")),
            ("arn:aws-us-gov:kms:us-gov-west-1:1:alias/x", Some("us-gov-west-1")),
            ("1234abcd-12ab-34cd-56ef-1234567890ab", None),
            ("alias/backup", None),
            ("arn:aws:s3:::bucket", None),
        ];
        for (key, region) in rows {
            assert_eq!(arn_region(key).as_deref(), region, "{key}");
        }
    }

    #[test]
    fn role_chains_parse() {
        let chain = roles("arn:aws:iam::1:role/a;external_id=x1,arn:aws:iam::1:role/b");
        let parsed: Vec<_> =
            chain.iter().map(|r| (r.arn.as_str(), r.external_id.as_deref())).collect();
        assert_eq!(
            parsed,
            [("arn:aws:iam::1:role/a", Some("x1")), ("arn:aws:iam::1:role/b", None)]
        );
        assert!(roles("").is_empty());
    }
}
