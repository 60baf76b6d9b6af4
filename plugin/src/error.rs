//! The one error type that crosses the component boundary.
//!
//! Modules keep their own structured `thiserror` enums and convert into [`Error`] at their edge;
//! [`Error`] is what a host sees: a closed [`ErrorKind`], a SQLSTATE, a CockroachDB-compatible
//! message and an optional hint. No message ever holds a secret.

use std::fmt;

/// Whose fault an error is. Fine-grained distinctions live in the SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The statement text does not parse.
    Syntax,
    /// A value (URI, parameter, option) is not acceptable.
    InvalidArgument,
    /// A named object does not exist.
    NotFound,
    /// A named object exists already.
    AlreadyExists,
    /// The principal lacks a privilege.
    PermissionDenied,
    /// An external system could not be reached or refused the request.
    Unavailable,
    /// Valid, but not supported by this implementation.
    Unsupported,
    /// A bug or a broken host.
    Internal,
}

/// SQLSTATE codes used by extconn (PostgreSQL's names).
pub mod sqlstate {
    /// `42601` syntax_error
    pub const SYNTAX_ERROR: &str = "42601";
    /// `42501` insufficient_privilege
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    /// `42710` duplicate_object
    pub const DUPLICATE_OBJECT: &str = "42710";
    /// `42704` undefined_object
    pub const UNDEFINED_OBJECT: &str = "42704";
    /// `22023` invalid_parameter_value
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    /// `0LP01` invalid_grant_operation
    pub const INVALID_GRANT_OPERATION: &str = "0LP01";
    /// `0A000` feature_not_supported
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    /// `54000` program_limit_exceeded
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    /// `58030` io_error
    pub const IO_ERROR: &str = "58030";
    /// `08006` connection_failure
    pub const CONNECTION_FAILURE: &str = "08006";
    /// `XX000` internal_error
    pub const INTERNAL_ERROR: &str = "XX000";
    /// `40001` serialization_failure
    pub const SERIALIZATION_FAILURE: &str = "40001";
    /// `dependent_objects_still_exist`
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
}

/// An error as a host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Whose fault it is.
    pub kind: ErrorKind,
    /// The SQLSTATE.
    pub sqlstate: &'static str,
    /// CockroachDB-compatible text, without secrets.
    pub message: String,
    /// More about the error (for a syntax error: the source with a caret under the fault).
    pub detail: Option<String>,
    /// Advice for the user, if any.
    pub hint: Option<String>,
}

impl Error {
    /// An error of `kind` with `sqlstate` and `message`.
    pub fn new(kind: ErrorKind, sqlstate: &'static str, message: impl Into<String>) -> Self {
        Self { kind, sqlstate, message: message.into(), detail: None, hint: None }
    }

    /// Adds a detail.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prefixes the message with `context: `, keeping kind and SQLSTATE (CockroachDB's wrapping).
    #[must_use]
    pub fn wrap(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// `42601`: the statement does not parse.
    pub fn syntax(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Syntax, sqlstate::SYNTAX_ERROR, message)
    }

    /// `22023`: a value is not acceptable.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, sqlstate::INVALID_PARAMETER_VALUE, message)
    }

    /// `42704`: an object does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, sqlstate::UNDEFINED_OBJECT, message)
    }

    /// `42710`: an object exists already.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, sqlstate::DUPLICATE_OBJECT, message)
    }

    /// `42501`: a privilege is missing.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, sqlstate::INSUFFICIENT_PRIVILEGE, message)
    }

    /// `0A000`: not supported here.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, sqlstate::FEATURE_NOT_SUPPORTED, message)
    }

    /// `54000`: an input is over a limit.
    pub fn limit(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, sqlstate::PROGRAM_LIMIT_EXCEEDED, message)
    }

    /// `XX000`: a bug or a host that broke the protocol.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, sqlstate::INTERNAL_ERROR, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
