//! An in-process fake of Google Cloud Storage's **XML API**, the API object_store's GCS client
//! speaks, for the `gs://` tests: HTTP/1.1 on 127.0.0.1, one request per connection
//! (`Connection: close`), objects kept in memory.
//!
//! It emulates exactly the requests object_store 0.14.2 sends (`gcp/client.rs`), as Google
//! documents them:
//!
//! * [PUT object](https://cloud.google.com/storage/docs/xml-api/put-object-upload)
//!   `PUT /{bucket}/{object}` → `ETag`, `x-goog-generation`; with
//!   [`x-goog-if-generation-match`](https://cloud.google.com/storage/docs/xml-api/reference-headers#xgoogifgenerationmatch)
//!   (`0`: only if absent) → `412 PreconditionFailed` when the generation differs.
//! * [GET object](https://cloud.google.com/storage/docs/xml-api/get-object-download) and
//!   [HEAD object](https://cloud.google.com/storage/docs/xml-api/head-object), with `Range`
//!   (`206` and `Content-Range`, `416 InvalidRange`), `ETag`, `Last-Modified`,
//!   `x-goog-generation`.
//! * [DELETE object](https://cloud.google.com/storage/docs/xml-api/delete-object) → `204`.
//! * [List objects](https://cloud.google.com/storage/docs/xml-api/get-bucket-list) with
//!   `list-type=2`: `prefix`, `delimiter` (`CommonPrefixes`), `max-keys`, `start-after`,
//!   `continuation-token` / `NextContinuationToken`.
//! * XML multipart uploads: [initiate](https://cloud.google.com/storage/docs/xml-api/post-object-multipart)
//!   (`POST ?uploads` → `<InitiateMultipartUploadResult><UploadId>`),
//!   [upload part](https://cloud.google.com/storage/docs/xml-api/put-object-multipart)
//!   (`PUT ?partNumber=N&uploadId=U` → `ETag`),
//!   [complete](https://cloud.google.com/storage/docs/xml-api/post-object-complete)
//!   (`POST ?uploadId=U` with `<CompleteMultipartUpload>`; the ETags must match the uploaded
//!   parts, in ascending order, every part but the last at least 5 MiB) and
//!   [abort](https://cloud.google.com/storage/docs/xml-api/delete-multipart) (`DELETE
//!   ?uploadId=U` → `204`).
//! * [Copy](https://cloud.google.com/storage/docs/xml-api/put-object-copy): `PUT` with
//!   `x-goog-copy-source: {bucket}/{object}` (percent-encoded), honouring
//!   `x-goog-if-generation-match`.
//! * [Errors](https://cloud.google.com/storage/docs/xml-api/reference-status) as
//!   `<Error><Code>…</Code><Message>…</Message><Details>…</Details></Error>`: `NoSuchKey`,
//!   `NoSuchBucket`, `NoSuchUpload`, `AccessDenied` (403), `AuthenticationRequired` (401),
//!   `PreconditionFailed`, `InvalidArgument` (anything not emulated: unknown query
//!   parameters, conditional headers other than the generation match, …).
//!
//! Authentication: every request needs `Authorization: Bearer <token>`. Tokens are those the
//! server registered ([`GcsServer::token`], [`GcsServer::read_only_token`]: reads only, writes
//! answer `403 AccessDenied`), those its OAuth endpoint `/token` issued for the
//! [JWT-bearer grant](https://developers.google.com/identity/protocols/oauth2/service-account#httprest),
//! or a [self-signed JWT](https://google.aip.dev/auth/4111) of the fake service account
//! (RS256 under `fake-service-account-key.pem`, `iss` = `sub` = its email, the key id as
//! `kid`, a `scope`, unexpired): object_store 0.14.2 sends the latter and never calls the
//! key file's `token_uri`.
//!
//! Only tokio, serde_json, base64, sha2, chrono, getrandom and ring are used.
#![allow(dead_code)]

#[path = "fake_http.rs"]
mod fake_http;
#[path = "google_account.rs"]
mod google_account;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use fake_http::{Answer, Request, percent_decode, serve};
use google_account::{SERVICE_ACCOUNT_EMAIL, SERVICE_ACCOUNT_KEY_ID, random_hex, verify_jwt};

/// GCS's smallest part but the last of an XML multipart upload.
const MIN_PART: usize = 5 << 20;
/// GCS's largest listing page.
const MAX_KEYS: usize = 1000;

/// GCS's XML error document.
fn error(status: u16, code: &str, message: &str, details: &str) -> Answer {
    let details = if details.is_empty() {
        String::new()
    } else {
        format!("<Details>{}</Details>", escape(details))
    };
    Answer::xml(
        status,
        format!(
            "<Error><Code>{code}</Code><Message>{}</Message>{details}</Error>",
            escape(message)
        ),
    )
}

fn not_emulated(what: &str) -> Answer {
    error(400, "InvalidArgument", "Invalid argument.", &format!("not emulated: {what}"))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The texts of every `<tag>…</tag>` in `xml`, in order.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(&close) else { break };
        out.push(&body[..end]);
        rest = &body[end + close.len()..];
    }
    out
}

/// An opaque, content-derived entity tag, quoted as GCS sends it.
fn etag(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn http_date(time: DateTime<Utc>) -> String {
    time.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// What a token may do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Access {
    ReadWrite,
    ReadOnly,
}

struct Object {
    data: Vec<u8>,
    generation: u64,
    etag: String,
    modified: DateTime<Utc>,
    content_type: String,
}

struct Upload {
    bucket: String,
    key: String,
    content_type: String,
    /// By part number: ETag and data.
    parts: BTreeMap<u32, (String, Vec<u8>)>,
}

#[derive(Default)]
struct State {
    /// Objects by key, per bucket.
    buckets: HashMap<String, BTreeMap<String, Object>>,
    uploads: HashMap<String, Upload>,
    tokens: HashMap<String, Access>,
    last_generation: u64,
    /// The most keys one listing page holds (GCS: 1000).
    page_limit: usize,
    /// `METHOD path?query` of every request served.
    log: Vec<String>,
    /// Requests authorized by a self-signed JWT of the service account.
    self_signed: usize,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fake GCS XML API with its OAuth token endpoint at `/token`.
pub struct GcsServer {
    url: String,
    state: Shared,
}

impl GcsServer {
    /// Starts a server on a fresh port with no bucket and one read-write token
    /// ([`Self::token`]).
    pub async fn start() -> Self {
        let state: Shared = Arc::default();
        {
            let mut state = lock(&state);
            state.page_limit = MAX_KEYS;
            state.tokens.insert(format!("ya29.fake-{}", random_hex(16)), Access::ReadWrite);
        }
        let shared = state.clone();
        let url = serve(move |request| handle(&shared, request)).await;
        Self { url, state }
    }

    /// The base URL, what `Config::gcs_endpoint` takes.
    pub fn endpoint(&self) -> String {
        self.url.clone()
    }

    /// Creates the (empty) bucket `name`.
    pub fn create_bucket(&self, name: &str) {
        lock(&self.state).buckets.entry(name.to_owned()).or_default();
    }

    /// A bearer token allowed to read and write.
    pub fn token(&self) -> String {
        let state = lock(&self.state);
        state.tokens.iter().find(|(_, a)| **a == Access::ReadWrite).expect("a token").0.clone()
    }

    /// A new bearer token allowed to read only: writes answer `403 AccessDenied`.
    pub fn read_only_token(&self) -> String {
        let token = format!("ya29.read-only-{}", random_hex(16));
        lock(&self.state).tokens.insert(token.clone(), Access::ReadOnly);
        token
    }

    /// Listing pages hold at most `keys` entries (GCS: 1000), to exercise continuation tokens.
    pub fn set_page_limit(&self, keys: usize) {
        lock(&self.state).page_limit = keys.max(1);
    }

    /// The fake service account's key file, with `token_uri` pointing at this server.
    pub fn service_account_json(&self) -> String {
        google_account::key_file(&self.url)
    }

    /// How many requests reached `path` (percent-encoded, without the query).
    pub fn hits(&self, path: &str) -> usize {
        let state = lock(&self.state);
        state.log.iter().filter(|l| l.split([' ', '?']).nth(1) == Some(path)).count()
    }

    /// `METHOD path?query` of every request served so far.
    pub fn log(&self) -> Vec<String> {
        lock(&self.state).log.clone()
    }

    /// How many requests a self-signed JWT of the service account authorized.
    pub fn self_signed_requests(&self) -> usize {
        lock(&self.state).self_signed
    }

    /// The bytes of `bucket/key`, if it exists.
    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        lock(&self.state).buckets.get(bucket)?.get(key).map(|o| o.data.clone())
    }

    /// Multipart uploads initiated and neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        lock(&self.state).uploads.len()
    }
}

fn handle(shared: &Shared, request: Request) -> Answer {
    let line = match request.query.is_empty() {
        true => format!("{} {}", request.method, request.path),
        false => {
            let query: Vec<String> =
                request.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{} {}?{}", request.method, request.path, query.join("&"))
        }
    };
    lock(shared).log.push(line);
    if request.path == "/token" && request.method == "POST" {
        return token_grant(shared, &request);
    }
    let access = {
        let mut state = lock(shared);
        match request.bearer() {
            Some(token) => match state.tokens.get(token) {
                Some(access) => Some(*access),
                None if self_signed_jwt(token) => {
                    state.self_signed += 1;
                    Some(Access::ReadWrite)
                }
                None => None,
            },
            None => None,
        }
    };
    let Some(access) = access else {
        return error(
            401,
            "AuthenticationRequired",
            "Authentication required.",
            "the bearer token is missing, expired or not issued by this server",
        );
    };

    let path = request.path.trim_start_matches('/');
    let (bucket, key) = match path.split_once('/') {
        Some((bucket, key)) => (percent_decode(bucket), Some(percent_decode(key))),
        None => (percent_decode(path), None),
    };
    let mut state = lock(shared);
    if !state.buckets.contains_key(&bucket) {
        return error(404, "NoSuchBucket", "The specified bucket does not exist.", &bucket);
    }
    let write = matches!(request.method.as_str(), "PUT" | "POST" | "DELETE");
    if write && access == Access::ReadOnly {
        let details = format!(
            "{SERVICE_ACCOUNT_EMAIL} does not have storage.objects.create access to the Google \
             Cloud Storage object. Permission 'storage.objects.create' denied on resource \
             (or it may not exist)."
        );
        return error(403, "AccessDenied", "Access denied.", &details);
    }
    let conditional = ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"];
    if let Some(h) = conditional.iter().find(|h| request.headers.contains_key(**h)) {
        return not_emulated(h);
    }
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return match request.method.as_str() {
            "GET" if request.param("list-type") == Some("2") => list(&state, &bucket, &request),
            _ => not_emulated("bucket operations other than list-type=2"),
        };
    };
    match request.method.as_str() {
        "GET" | "HEAD" if request.query.is_empty() => get(&state, &bucket, &key, &request),
        "PUT" if request.has_params(&["partNumber", "uploadId"]) => {
            put_part(&mut state, &bucket, &key, &request)
        }
        "PUT" if request.query.is_empty() => match request.header("x-goog-copy-source") {
            Some(source) => copy(&mut state, &bucket, &key, source, &request),
            None => {
                let content_type = content_type(&request);
                put(&mut state, &bucket, &key, request.body, content_type, &request.headers)
            }
        },
        "POST" if request.has_params(&["uploads"]) => {
            let id = format!("fake-upload-{}", random_hex(16));
            let upload = Upload {
                bucket: bucket.clone(),
                key: key.clone(),
                content_type: content_type(&request),
                parts: BTreeMap::new(),
            };
            state.uploads.insert(id.clone(), upload);
            Answer::xml(
                200,
                format!(
                    "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                     <Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId>\
                     </InitiateMultipartUploadResult>",
                    escape(&bucket),
                    escape(&key)
                ),
            )
        }
        "POST" if request.has_params(&["uploadId"]) => {
            complete(&mut state, &bucket, &key, &request)
        }
        "DELETE" if request.has_params(&["uploadId"]) => {
            let id = request.param("uploadId").unwrap_or_default();
            match state.uploads.get(id) {
                Some(u) if u.bucket == bucket && u.key == key => {
                    state.uploads.remove(id);
                    Answer::new(204)
                }
                _ => no_such_upload(),
            }
        }
        "DELETE" if request.query.is_empty() => {
            let objects = state.buckets.get_mut(&bucket).expect("bucket exists");
            match objects.remove(&key) {
                Some(_) => Answer::new(204),
                None => no_such_key(&bucket, &key),
            }
        }
        method => not_emulated(&format!("{method} with query {:?}", request.query)),
    }
}

fn no_such_key(bucket: &str, key: &str) -> Answer {
    let details = format!("No such object: {bucket}/{key}");
    error(404, "NoSuchKey", "The specified key does not exist.", &details)
}

fn no_such_upload() -> Answer {
    error(
        404,
        "NoSuchUpload",
        "The requested upload was not found.",
        "the upload id is unknown, or was completed or aborted",
    )
}

fn content_type(request: &Request) -> String {
    request.header("content-type").unwrap_or("application/octet-stream").to_owned()
}

/// `412` unless `x-goog-if-generation-match` (absent: anything goes) names the current
/// generation, `0` for none.
fn precondition(
    objects: &BTreeMap<String, Object>,
    key: &str,
    headers: &HashMap<String, String>,
) -> Result<(), Answer> {
    let Some(wanted) = headers.get("x-goog-if-generation-match") else { return Ok(()) };
    let current = objects.get(key).map_or(0, |o| o.generation);
    match wanted.parse::<u64>() {
        Ok(wanted) if wanted == current => Ok(()),
        Ok(_) => Err(error(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
            "Condition on x-goog-if-generation-match failed",
        )),
        Err(_) => Err(not_emulated("a non-numeric x-goog-if-generation-match")),
    }
}

fn put(
    state: &mut State,
    bucket: &str,
    key: &str,
    data: Vec<u8>,
    content_type: String,
    headers: &HashMap<String, String>,
) -> Answer {
    if let Err(answer) = precondition(&state.buckets[bucket], key, headers) {
        return answer;
    }
    state.last_generation += 1;
    let object = Object {
        etag: etag(&data),
        generation: state.last_generation,
        modified: Utc::now(),
        content_type,
        data,
    };
    let answer = Answer::new(200)
        .header("ETag", object.etag.clone())
        .header("x-goog-generation", object.generation.to_string())
        .header("x-goog-metageneration", "1")
        .header("x-goog-stored-content-length", object.data.len().to_string());
    state.buckets.get_mut(bucket).expect("bucket exists").insert(key.to_owned(), object);
    answer
}

fn get(state: &State, bucket: &str, key: &str, request: &Request) -> Answer {
    let Some(object) = state.buckets[bucket].get(key) else {
        return no_such_key(bucket, key);
    };
    let answer = Answer::new(200)
        .header("ETag", object.etag.clone())
        .header("Last-Modified", http_date(object.modified))
        .header("Content-Type", object.content_type.clone())
        .header("x-goog-generation", object.generation.to_string())
        .header("x-goog-metageneration", "1")
        .header("x-goog-stored-content-length", object.data.len().to_string())
        .header("Accept-Ranges", "bytes");
    let Some(range) = request.header("range") else {
        return answer.body(object.data.clone());
    };
    let size = object.data.len();
    let parsed = (size > 0).then_some(()).and_then(|()| {
        range.strip_prefix("bytes=").and_then(|r| r.split_once('-')).and_then(
            |(first, last)| match (first.parse::<usize>(), last.parse::<usize>()) {
                (Ok(first), Ok(last)) if first <= last => Some((first, last.min(size - 1))),
                (Ok(first), Err(_)) if last.is_empty() => Some((first, size.checked_sub(1)?)),
                (Err(_), Ok(n)) if first.is_empty() && n > 0 => {
                    Some((size.saturating_sub(n), size.checked_sub(1)?))
                }
                _ => None,
            },
        )
    });
    match parsed {
        Some((first, last)) if first < size && first <= last => answer
            .header("Content-Range", format!("bytes {first}-{last}/{size}"))
            .body(object.data[first..=last].to_vec())
            .with_status(206),
        _ => error(
            416,
            "InvalidRange",
            "The requested range cannot be satisfied.",
            &format!("{range} of an object of {size} bytes"),
        ),
    }
}

fn copy(state: &mut State, bucket: &str, key: &str, source: &str, request: &Request) -> Answer {
    let source = source.trim_start_matches('/');
    let Some((from_bucket, from_key)) = source.split_once('/') else {
        return not_emulated("x-goog-copy-source without an object");
    };
    let (from_bucket, from_key) = (percent_decode(from_bucket), percent_decode(from_key));
    let Some(objects) = state.buckets.get(&from_bucket) else {
        return error(404, "NoSuchBucket", "The specified bucket does not exist.", &from_bucket);
    };
    let Some(object) = objects.get(&from_key) else {
        return no_such_key(&from_bucket, &from_key);
    };
    let (data, content_type) = (object.data.clone(), object.content_type.clone());
    let answer = put(state, bucket, key, data, content_type, &request.headers);
    if answer.status != 200 {
        return answer;
    }
    let object = &state.buckets[bucket][key];
    let modified = object.modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let xml = format!(
        "<CopyObjectResult><LastModified>{modified}</LastModified><ETag>{}</ETag>\
         </CopyObjectResult>",
        escape(&object.etag)
    );
    let mut copied = Answer::xml(200, xml);
    copied.headers.extend(answer.headers);
    copied
}

fn put_part(state: &mut State, bucket: &str, key: &str, request: &Request) -> Answer {
    let id = request.param("uploadId").unwrap_or_default();
    let Ok(number @ 1..=10000) = request.param("partNumber").unwrap_or_default().parse::<u32>()
    else {
        return error(400, "InvalidArgument", "Invalid argument.", "partNumber must be 1-10000");
    };
    match state.uploads.get_mut(id) {
        Some(upload) if upload.bucket == bucket && upload.key == key => {
            let tag = etag(&request.body);
            upload.parts.insert(number, (tag.clone(), request.body.clone()));
            Answer::new(200).header("ETag", tag)
        }
        _ => no_such_upload(),
    }
}

fn complete(state: &mut State, bucket: &str, key: &str, request: &Request) -> Answer {
    let id = request.param("uploadId").unwrap_or_default().to_owned();
    let Some(upload) = state.uploads.get(&id).filter(|u| u.bucket == bucket && u.key == key) else {
        return no_such_upload();
    };
    let xml = String::from_utf8_lossy(&request.body).into_owned();
    let Some(root) = elements(&xml, "CompleteMultipartUpload").first().copied() else {
        return error(400, "MalformedXML", "The XML you provided was not well-formed.", "");
    };
    let mut listed = Vec::new();
    for part in elements(root, "Part") {
        let number = elements(part, "PartNumber").first().and_then(|n| n.trim().parse().ok());
        let tag = elements(part, "ETag").first().map(|t| unescape(t.trim()));
        match (number, tag) {
            (Some(number), Some(tag)) => listed.push((number, tag)),
            _ => {
                return error(400, "MalformedXML", "The XML you provided was not well-formed.", "");
            }
        }
    }
    if listed.is_empty() {
        return error(400, "MalformedXML", "The XML you provided was not well-formed.", "no parts");
    }
    if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
        let message = "The list of parts was not in ascending order.";
        return error(400, "InvalidPartOrder", message, "");
    }
    let mut data = Vec::new();
    for (i, (number, tag)) in listed.iter().enumerate() {
        let Some((uploaded_tag, bytes)) = upload.parts.get(number) else {
            return error(
                400,
                "InvalidPart",
                "One or more of the specified parts could not be found.",
                &format!("part {number}"),
            );
        };
        if uploaded_tag != tag {
            let details = format!("part {number}: ETag {tag} is not the uploaded part's");
            return error(
                400,
                "InvalidPart",
                "One or more of the specified parts could not be found.",
                &details,
            );
        }
        if i + 1 < listed.len() && bytes.len() < MIN_PART {
            let details = format!("part {number} has {} bytes", bytes.len());
            return error(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
                &details,
            );
        }
        data.extend_from_slice(bytes);
    }
    let content_type = upload.content_type.clone();
    state.uploads.remove(&id);
    let answer = put(state, bucket, key, data, content_type, &HashMap::new());
    // GCS's ETag of a composed object names its part count.
    let object = state.buckets.get_mut(bucket).expect("bucket exists").get_mut(key).expect("put");
    object.etag = format!("{}-{}\"", object.etag.trim_end_matches('"'), listed.len());
    let xml = format!(
        "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Location>/{}/{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag>\
         </CompleteMultipartUploadResult>",
        escape(bucket),
        escape(key),
        escape(bucket),
        escape(key),
        escape(&object.etag)
    );
    let mut completed = Answer::xml(200, xml);
    completed.headers.extend(answer.headers.into_iter().filter(|(n, _)| n == "x-goog-generation"));
    completed
}

/// `list-type=2`: keys under `prefix`, those with `delimiter` after it folded into common
/// prefixes, in key order, one page at a time.
fn list(state: &State, bucket: &str, request: &Request) -> Answer {
    let allowed =
        ["list-type", "prefix", "delimiter", "max-keys", "start-after", "continuation-token"];
    if let Some((name, _)) = request.query.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        return not_emulated(&format!("list parameter {name}"));
    }
    let prefix = request.param("prefix").unwrap_or_default();
    let delimiter = request.param("delimiter").filter(|d| !d.is_empty());
    let max_keys = match request.param("max-keys").map(str::parse::<usize>) {
        None => MAX_KEYS,
        Some(Ok(n)) => n.min(MAX_KEYS),
        Some(Err(_)) => return not_emulated("a non-numeric max-keys"),
    };
    let page = max_keys.min(state.page_limit);
    let resume = match request.param("continuation-token") {
        Some(token) => {
            match URL_SAFE_NO_PAD.decode(token).ok().and_then(|t| String::from_utf8(t).ok()) {
                Some(after) => Some(after),
                None => {
                    return error(
                        400,
                        "InvalidArgument",
                        "Invalid argument.",
                        "bad continuation-token",
                    );
                }
            }
        }
        None => request.param("start-after").map(str::to_owned),
    };

    // Every entry of the full listing, by name: (name, Some(object)) or (prefix, None).
    let mut entries: Vec<(String, Option<&Object>)> = Vec::new();
    for (key, object) in &state.buckets[bucket] {
        let Some(rest) = key.strip_prefix(prefix) else { continue };
        match delimiter.and_then(|d| rest.find(d).map(|at| at + d.len())) {
            Some(end) => {
                let common = format!("{prefix}{}", &rest[..end]);
                if entries.last().map(|(name, _)| name) != Some(&common) {
                    entries.push((common, None));
                }
            }
            None => entries.push((key.clone(), Some(object))),
        }
    }
    let rest: Vec<_> = entries
        .into_iter()
        .filter(|(name, _)| resume.as_ref().is_none_or(|after| name > after))
        .collect();
    let truncated = rest.len() > page;
    let shown = &rest[..rest.len().min(page)];

    let mut xml = format!(
        "<ListBucketResult xmlns=\"http://doc.s3.amazonaws.com/2006-03-01\"><Name>{}</Name>\
         <Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
        escape(bucket),
        escape(prefix),
        shown.len()
    );
    if let Some(d) = delimiter {
        xml.push_str(&format!("<Delimiter>{}</Delimiter>", escape(d)));
    }
    xml.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
    if truncated {
        let last = &shown.last().expect("a page holds at least one entry").0;
        xml.push_str(&format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            URL_SAFE_NO_PAD.encode(last)
        ));
    }
    // All Contents, then all CommonPrefixes, as GCS (and S3) order them.
    for (key, object) in shown {
        if let Some(o) = object {
            let modified = o.modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            xml.push_str(&format!(
                "<Contents><Key>{}</Key><Generation>{}</Generation>\
                 <MetaGeneration>1</MetaGeneration><LastModified>{modified}</LastModified>\
                 <ETag>{}</ETag><Size>{}</Size></Contents>",
                escape(key),
                o.generation,
                escape(&o.etag),
                o.data.len()
            ));
        }
    }
    for (common, object) in shown {
        if object.is_none() {
            xml.push_str(&format!(
                "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                escape(common)
            ));
        }
    }
    xml.push_str("</ListBucketResult>");
    Answer::xml(200, xml)
}

/// Whether `token` is a self-signed JWT of the fake service account (AIP-4111): RS256 under
/// its key, its key id as `kid`, `iss` = `sub` = its email, a Cloud Storage `scope` (or an
/// `aud`), issued no later than a minute from now, unexpired, living at most an hour.
fn self_signed_jwt(token: &str) -> bool {
    let Some((header, claims)) = verify_jwt(token) else { return false };
    let now = Utc::now().timestamp();
    let (iat, exp) =
        (claims["iat"].as_i64().unwrap_or(i64::MAX), claims["exp"].as_i64().unwrap_or(0));
    let scope = claims["scope"].as_str().unwrap_or_default();
    let scoped = scope.split(' ').any(|s| {
        s == "https://www.googleapis.com/auth/cloud-platform"
            || s.starts_with("https://www.googleapis.com/auth/devstorage.")
    }) || claims["aud"].as_str() == Some("https://storage.googleapis.com/");
    header["kid"] == SERVICE_ACCOUNT_KEY_ID
        && claims["iss"] == SERVICE_ACCOUNT_EMAIL
        && claims["sub"] == SERVICE_ACCOUNT_EMAIL
        && scoped
        && iat <= now + 60
        && now < exp
        && exp - iat <= 3600
}

/// The JWT-bearer grant (`google_account`): a read-write token.
fn token_grant(state: &Shared, request: &Request) -> Answer {
    match google_account::jwt_bearer_claims(request) {
        Ok(_) => {
            let token = google_account::issued_token();
            lock(state).tokens.insert(token.clone(), Access::ReadWrite);
            Answer::json(200, google_account::token_answer(&token))
        }
        Err((status, body)) => Answer::json(status, body),
    }
}
