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
    /// Permission denied by the filesystem or the service.
    #[error("{location}: permission denied")]
    PermissionDenied {
        /// The object's display form.
        location: String,
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
            Self::NoSuchNode { .. } | Self::InvalidKey { .. } => ErrorKind::InvalidArgument,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            Self::Store { source, .. } => match source {
                object_store::Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
                object_store::Error::NotSupported { .. }
                | object_store::Error::NotImplemented { .. } => ErrorKind::Unsupported,
                object_store::Error::InvalidPath { .. } => ErrorKind::InvalidArgument,
                _ => ErrorKind::Unavailable,
            },
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

    /// Classifies an object_store error for the object at `location`.
    pub(crate) fn from_store(
        location: String,
        operation: &'static str,
        source: object_store::Error,
    ) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Self::NotFound { location },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                Self::PermissionDenied { location, source }
            }
            source if io_kind(&source) == Some(std::io::ErrorKind::PermissionDenied) => {
                Self::PermissionDenied { location, source }
            }
            source => Self::Store { location, operation, source },
        }
    }
}

/// The kind of the first `std::io::Error` in the chain, if any: the local store wraps
/// permission errors in a generic error.
fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
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
}
