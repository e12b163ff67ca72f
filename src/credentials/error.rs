//! [`CredentialError`]: every variant names the file, helper or registry involved and never a
//! secret.

use std::path::PathBuf;
use std::time::Duration;

/// Something went wrong reading, running or writing a credential store.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A credentials file exists but could not be read.
    #[error("cannot read credentials file {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A credentials file is not JSON of the expected shape.
    #[error("invalid credentials file {}: {reason}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong (a position or a field name, never a value).
        reason: String,
    },
    /// One `auths` entry of a credentials file cannot be used.
    #[error("invalid entry `{key}` in credentials file {}: {reason}", path.display())]
    InvalidEntry {
        /// The file.
        path: PathBuf,
        /// The entry's key as written.
        key: String,
        /// What is wrong (never the value).
        reason: String,
    },
    /// A credentials file could not be written.
    #[error("cannot write credentials file {}", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Neither `$DOCKER_CONFIG` nor `$HOME` is set, so there is no docker config directory.
    #[error("cannot locate docker's config directory: neither DOCKER_CONFIG nor HOME is set")]
    NoConfigDir,
    /// A helper name in a config file cannot name a program (`docker-credential-NAME`).
    #[error("invalid credential helper name `{helper}` in {}", path.display())]
    InvalidHelperName {
        /// The file naming it.
        path: PathBuf,
        /// The name as written.
        helper: String,
    },
    /// The helper program is not installed (not found in `PATH`).
    #[error("credential helper {helper} (needed for {registry}) is not installed or not in PATH")]
    HelperNotFound {
        /// The program, `docker-credential-NAME`.
        helper: String,
        /// The registry host.
        registry: String,
    },
    /// The helper could not be started or talked to.
    #[error("cannot run credential helper {helper} for {registry}")]
    HelperSpawn {
        /// The program.
        helper: String,
        /// The registry host.
        registry: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The helper exited with an error other than "credentials not found".
    #[error("credential helper {helper} failed to {action} credentials for {registry}: {detail}")]
    HelperFailed {
        /// The program.
        helper: String,
        /// `get`, `store` or `erase`.
        action: &'static str,
        /// The registry host.
        registry: String,
        /// Exit status and the first line of its message, scrubbed of secrets.
        detail: String,
    },
    /// The helper did not finish in time and was killed.
    #[error("credential helper {helper} did not {action} credentials for {registry} within {}s; it was stopped", timeout.as_secs_f64())]
    HelperTimeout {
        /// The program.
        helper: String,
        /// `get`, `store` or `erase`.
        action: &'static str,
        /// The registry host.
        registry: String,
        /// The limit.
        timeout: Duration,
    },
    /// The helper answered `get` with something that is not `{"Username","Secret"}` JSON.
    #[error("credential helper {helper} sent an unreadable answer for {registry}: {reason}")]
    HelperResponse {
        /// The program.
        helper: String,
        /// The registry host.
        registry: String,
        /// What is wrong (never the text).
        reason: String,
    },
    /// The registry name is empty or not a host.
    #[error("invalid registry `{registry}`")]
    InvalidRegistry {
        /// As given.
        registry: String,
    },
    /// `login` was given an empty user name.
    #[error("a user name is required to log in to {registry}")]
    MissingUsername {
        /// The registry host.
        registry: String,
    },
}
