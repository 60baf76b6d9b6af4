//! The providers' one error type.

/// Whose fault a failed request is; mirrors the WIT `error-kind` the component receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The target or key is malformed.
    InvalidArgument,
    /// The object does not exist.
    NotFound,
    /// The object exists and must not.
    AlreadyExists,
    /// The credentials do not allow it.
    PermissionDenied,
    /// The service could not be reached or failed.
    Unavailable,
    /// The scheme or operation is not implemented.
    Unsupported,
    /// A bug on our side.
    Internal,
}

/// A failed provider request. Messages name the location as `scheme://host/path[/key]`: never
/// the URI's parameters, so never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No storage provider for that scheme yet.
    #[error("storage provider {scheme} is not available yet")]
    UnsupportedStorage {
        /// The target's scheme.
        scheme: String,
    },
    /// No KMS provider for that scheme yet.
    #[error("KMS provider {scheme} is not available yet")]
    UnsupportedKms {
        /// The target's scheme.
        scheme: String,
    },
    /// No changefeed sink for that scheme yet.
    #[error("changefeed sink {scheme} is not available yet")]
    UnsupportedSink {
        /// The target's scheme.
        scheme: String,
    },
    /// `nodelocal://<n>/…` for a node other than this one.
    #[error(
        "{location}: node {node} does not exist: this is a single-node deployment, \
         use nodelocal://1 or nodelocal://self"
    )]
    NoSuchNode {
        /// `nodelocal://n/path`.
        location: String,
        /// The node id as written.
        node: String,
    },
    /// A key or path that cannot name an object (`..`, empty segments, …).
    #[error("{location}: invalid object key {key:?}")]
    InvalidKey {
        /// The target's display form.
        location: String,
        /// The offending key.
        key: String,
        /// Why.
        #[source]
        source: object_store::path::Error,
    },
    /// The object does not exist.
    #[error("{location}: object does not exist")]
    NotFound {
        /// The object's display form.
        location: String,
    },
    /// The bucket (or Azure container) itself does not exist.
    #[error("{location}: {operation} failed: the bucket or container does not exist")]
    NoBucket {
        /// The object's display form.
        location: String,
        /// `put`, `get`, `list` or `delete`.
        operation: &'static str,
    },
    /// Nothing answers at the service's address (stopped, or the wrong endpoint).
    #[error("{location}: {operation} failed: cannot connect to the service: {cause}")]
    Unreachable {
        /// The object's display form.
        location: String,
        /// `put`, `get`, `list` or `delete`.
        operation: &'static str,
        /// The connection error, e.g. `Connection refused (os error 111)`.
        cause: String,
    },
    /// Permission denied by the filesystem or the service.
    #[error("{location}: permission denied: {reason}")]
    PermissionDenied {
        /// The object's display form.
        location: String,
        /// Rejected credentials, or valid ones not allowed this operation, with the service's
        /// error code when it gave one.
        reason: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// Any other failure of the store.
    #[error("{location}: {operation} failed")]
    Store {
        /// The object's display form.
        location: String,
        /// `put`, `get`, `list` or `delete`.
        operation: &'static str,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// A parameter the component accepts that this provider cannot honour.
    #[error("{location}: {name} is not supported by extconn's {provider} provider: {reason}")]
    UnsupportedParameter {
        /// The target's display form.
        location: String,
        /// `s3`, `gs` or `azure`.
        provider: &'static str,
        /// The parameter's name.
        name: &'static str,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// A parameter whose value (never shown: it may be a secret) cannot be used.
    #[error("{location}: {name} {reason}")]
    InvalidParameter {
        /// The target's display form.
        location: String,
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The cloud client could not be built from the target's parameters.
    #[error("{location}: cannot configure the {provider} client")]
    Configure {
        /// The target's display form.
        location: String,
        /// `s3`, `gs` or `azure`.
        provider: &'static str,
        /// The builder's error.
        #[source]
        source: object_store::Error,
    },
    /// An error whose text held one of the target's secrets, which is shown as `redacted`.
    #[error("{message}")]
    Redacted {
        /// What the original error's kind was.
        kind: ErrorKind,
        /// The original message with every secret replaced.
        message: String,
    },
    /// A userfile table the user may not use (only its owner and root may).
    #[error(
        "{location}: user {user} may not use the userfile table {table}: a table userfiles_<name> belongs to user <name>, and only its owner and root may use it"
    )]
    UserfileTable {
        /// The target's display form.
        location: String,
        /// The user opening it.
        user: String,
        /// The qualified table name.
        table: String,
    },
    /// A Kafka sink request failed (its message names the sink, never a secret).
    #[error(transparent)]
    Kafka(#[from] crate::sink::kafka::Error),
    /// A webhook sink request failed (its message names the sink, never a secret).
    #[error(transparent)]
    Webhook(#[from] crate::sink::webhook::Error),
    /// A cloud-storage sink cannot use its options.
    #[error(transparent)]
    CloudStorageSink(#[from] crate::sink::cloudstorage::Error),
    /// A KMS (or its token service) answered a request with an error.
    #[error("{location}: {operation} failed: the service answered {answer}")]
    KmsService {
        /// The key's display form, `aws-kms:///redacted`.
        location: String,
        /// `encrypt`, `decrypt`, `token request` or `AssumeRole`.
        operation: &'static str,
        /// The HTTP status, the service's error code and its message, secrets replaced:
        /// `400 NotFoundException: Invalid keyId …` (one field: the error stays small).
        answer: String,
        /// What the code means.
        kind: ErrorKind,
    },
    /// A KMS answered something other than what its API documents.
    #[error("{location}: {operation} failed: unexpected answer from the service: {reason}")]
    KmsResponse {
        /// The key's display form.
        location: String,
        /// `encrypt`, `decrypt`, `token request` or `AssumeRole`.
        operation: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A KMS request failed without an answer, other than for want of a listener (TLS, a
    /// malformed URL).
    #[error("{location}: {operation} failed: {cause}")]
    KmsRequest {
        /// The key's display form.
        location: String,
        /// `encrypt`, `decrypt`, `token request` or `AssumeRole`.
        operation: &'static str,
        /// The client's error chain, secrets replaced.
        cause: String,
    },
    /// No credentials for a KMS key could be found or used.
    #[error("{location}: no usable credentials: {reason}")]
    KmsCredentials {
        /// The key's display form.
        location: String,
        /// Why, secrets replaced.
        reason: String,
    },
    /// The local directory backing the store could not be prepared.
    #[error("{location}: cannot prepare local directory")]
    LocalDir {
        /// The target's display form.
        location: String,
        /// The filesystem error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whose fault it is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::UnsupportedStorage { .. }
            | Self::UnsupportedKms { .. }
            | Self::UnsupportedSink { .. } => ErrorKind::Unsupported,
            Self::UnsupportedParameter { .. } => ErrorKind::Unsupported,
            Self::NoSuchNode { .. }
            | Self::InvalidKey { .. }
            | Self::InvalidParameter { .. }
            | Self::Configure { .. } => ErrorKind::InvalidArgument,
            Self::Redacted { kind, .. } => *kind,
            Self::NotFound { .. } | Self::NoBucket { .. } => ErrorKind::NotFound,
            Self::PermissionDenied { .. } | Self::UserfileTable { .. } => {
                ErrorKind::PermissionDenied
            }
            Self::Store { source, .. } => match source {
                object_store::Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
                object_store::Error::NotSupported { .. }
                | object_store::Error::NotImplemented { .. } => ErrorKind::Unsupported,
                object_store::Error::InvalidPath { .. } => ErrorKind::InvalidArgument,
                _ => ErrorKind::Unavailable,
            },
            Self::Unreachable { .. } | Self::KmsResponse { .. } | Self::KmsRequest { .. } => {
                ErrorKind::Unavailable
            }
            Self::KmsService { kind, .. } => *kind,
            Self::KmsCredentials { .. } => ErrorKind::PermissionDenied,
            Self::Kafka(e) => e.kind(),
            Self::Webhook(e) => e.kind(),
            Self::CloudStorageSink(e) => e.kind(),
            Self::LocalDir { source, .. } => match source.kind() {
                std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Unavailable,
            },
        }
    }

    /// The message with its whole chain of causes, `a: b: c`.
    pub fn message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }

    /// This error, or, when its message contains one of `secrets`, a [`Error::Redacted`] copy
    /// with every secret replaced: a service may echo a credential back in its error body.
    pub(crate) fn redact(self, secrets: &[String]) -> Self {
        let message = self.message();
        if !secrets.iter().any(|s| !s.is_empty() && message.contains(s.as_str())) {
            return self;
        }
        let message = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(message, |m, secret| m.replace(secret.as_str(), "redacted"));
        Self::Redacted { kind: self.kind(), message }
    }

    /// Classifies an object_store error for the object at `location`.
    pub(crate) fn from_store(
        location: String,
        operation: &'static str,
        source: object_store::Error,
    ) -> Self {
        match source {
            // A write cannot miss its object, only its bucket; Azure lists a missing container
            // as a generic error.
            object_store::Error::NotFound { .. } if operation == "put" => {
                Self::NoBucket { location, operation }
            }
            source if names_missing_bucket(&source) => Self::NoBucket { location, operation },
            object_store::Error::NotFound { .. } => Self::NotFound { location },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                let reason = denial(&source, operation);
                Self::PermissionDenied { location, reason, source }
            }
            // Some requests (GCS's list and multipart completion) come back as generic errors
            // that keep the HTTP status only in their text.
            source if refused_status(&source) => {
                let reason = denial(&source, operation);
                Self::PermissionDenied { location, reason, source }
            }
            source if io_kind(&source) == Some(std::io::ErrorKind::PermissionDenied) => {
                let reason = format!("the filesystem does not allow the {operation}");
                Self::PermissionDenied { location, reason, source }
            }
            // The HTTP client's chain repeats itself at every level: name the cause once.
            source if io_kind(&source).is_some_and(unreachable) => {
                let cause = io_error(&source).map(ToString::to_string).unwrap_or_default();
                Self::Unreachable { location, operation, cause }
            }
            source => Self::Store { location, operation, source },
        }
    }
}

/// Whether a generic store error is an HTTP 401 or 403 answer.
fn refused_status(source: &object_store::Error) -> bool {
    if !matches!(source, object_store::Error::Generic { .. }) {
        return false;
    }
    let mut cause: Option<&dyn std::error::Error> = Some(source);
    while let Some(e) = cause {
        let text = e.to_string();
        if text.contains("401 Unauthorized") || text.contains("403 Forbidden") {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Why a service refused: credentials it does not accept, or accepted credentials without the
/// permission for `operation` (a read-only key asked to write), told apart by the error code
/// S3, Azure and GCS put in their answers.
fn denial(source: &object_store::Error, operation: &str) -> String {
    let text = format!("{source}");
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_owned())
    };
    let code = tag("Code");
    let shown = match (&code, tag("Message")) {
        (Some(code), Some(message)) => format!(" ({code}: {message})"),
        (Some(code), None) => format!(" ({code})"),
        _ => String::new(),
    };
    const REJECTED: [&str; 7] = [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AuthenticationFailed",
        "InvalidAuthenticationInfo",
        "AuthenticationRequired",
    ];
    let rejected = matches!(source, object_store::Error::Unauthenticated { .. })
        || code.as_deref().is_some_and(|c| REJECTED.contains(&c));
    if rejected {
        format!("the service does not accept these credentials{shown}")
    } else {
        format!("the credentials are valid but not allowed to {operation} here{shown}")
    }
}

/// Whether a not-found error's text carries S3's, GCS's or Azure's missing-bucket code.
pub(crate) fn names_missing_bucket(error: &object_store::Error) -> bool {
    let text = format!("{error:?}");
    ["NoSuchBucket", "ContainerNotFound", "bucket does not exist"]
        .iter()
        .any(|code| text.contains(code))
}

/// The kind of the first `std::io::Error` in the chain, if any: the local store wraps
/// permission errors in a generic error.
/// An error and its causes, `a: b: c`, without repeats (reqwest repeats its causes' texts).
pub(crate) fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = Some(error);
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    io_error(error).map(std::io::Error::kind)
}

/// The first `std::io::Error` in the chain.
fn io_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = cause.source();
    }
    None
}

/// Whether an I/O error means nothing answered at the address.
fn unreachable(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::TimedOut
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::AddrNotAvailable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(kind: std::io::ErrorKind) -> object_store::Error {
        object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::new(kind, "boom")),
        }
    }

    #[test]
    fn store_errors_map_to_kinds() {
        let rows: Vec<(object_store::Error, ErrorKind)> = vec![
            (
                object_store::Error::NotFound { path: "p".into(), source: "gone".into() },
                ErrorKind::NotFound,
            ),
            (
                object_store::Error::PermissionDenied { path: "p".into(), source: "no".into() },
                ErrorKind::PermissionDenied,
            ),
            (
                object_store::Error::Unauthenticated { path: "p".into(), source: "no".into() },
                ErrorKind::PermissionDenied,
            ),
            (generic(std::io::ErrorKind::PermissionDenied), ErrorKind::PermissionDenied),
            (generic(std::io::ErrorKind::ConnectionRefused), ErrorKind::Unavailable),
            (
                object_store::Error::AlreadyExists { path: "p".into(), source: "x".into() },
                ErrorKind::AlreadyExists,
            ),
            (object_store::Error::NotSupported { source: "x".into() }, ErrorKind::Unsupported),
        ];
        for (source, kind) in rows {
            let shown = source.to_string();
            let err = Error::from_store("nodelocal://1/a/k".into(), "put", source);
            assert_eq!(err.kind(), kind, "{shown}");
            assert!(err.message().starts_with("nodelocal://1/a/k"), "{}", err.message());
        }
    }

    #[test]
    fn secrets_in_messages_are_redacted() {
        let source = object_store::Error::PermissionDenied {
            path: "p".into(),
            source: "<Token>CANARY-TOKEN</Token>".into(),
        };
        let err = Error::from_store("s3://b/k".into(), "get", source)
            .redact(&["CANARY-TOKEN".into(), String::new()]);
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(!err.message().contains("CANARY"), "{}", err.message());
        assert!(err.message().contains("<Token>redacted</Token>"), "{}", err.message());
        let plain = Error::NotFound { location: "s3://b/k".into() }.redact(&["zzz".into()]);
        assert!(matches!(plain, Error::NotFound { .. }));
    }
}
