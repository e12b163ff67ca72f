//! `airlift login` and `airlift logout`: check credentials against the registry, then store
//! or remove them in docker's `config.json` (or the credential helper it names), honouring
//! `$DOCKER_CONFIG` as docker does.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result};

use airlift::credentials::{self, CredentialOptions, LoginOutcome};
use airlift::registry::{AuthFailure, Credential, CredentialSource, RegistryClient, RegistryError};

use super::{Status, UsageError};
use crate::cli::{LoginArgs, LogoutArgs};
use crate::settings::client_settings;

/// The one credential being tried, for every host the check talks to (registry and token
/// service).
struct Trying(Credential);

impl CredentialSource for Trying {
    fn credential(&self, _registry: &str) -> Option<Credential> {
        Some(self.0.clone())
    }
}

/// The password from standard input: everything up to the end, without the final newline.
fn read_password_stdin() -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the password from standard input")?;
    let trimmed = text.strip_suffix('\n').unwrap_or(&text);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(trimmed.to_owned())
}

/// Runs `login`.
pub async fn login(args: LoginArgs) -> Result<Status> {
    let LoginArgs {
        registry,
        username,
        password_stdin,
        password,
        registry_args,
    } = args;
    if !registry_args.authfiles.is_empty() {
        return Err(UsageError(
            "login stores credentials in docker's config.json ($DOCKER_CONFIG); --authfile files are only read"
                .to_owned(),
        )
        .into());
    }
    let password = match (password, password_stdin) {
        (Some(p), _) => {
            eprintln!(
                "warning: a password on the command line can be seen by other users; use --password-stdin"
            );
            p
        }
        (None, true) => read_password_stdin()?,
        (None, false) => {
            return Err(UsageError(
                "give the password on standard input with --password-stdin".to_owned(),
            )
            .into());
        }
    };
    if username.is_empty() || password.is_empty() {
        return Err(
            UsageError("the user name and the password must not be empty".to_owned()).into(),
        );
    }
    let registry = registry.trim().to_owned();
    if registry.is_empty() || registry.contains('/') {
        return Err(UsageError(format!(
            "`{registry}` is not a registry: give HOST[:PORT], without a repository path"
        ))
        .into());
    }
    let mut opts =
        client_settings(registry_args, None).map_err(|e| UsageError(format!("{e:#}")))?;
    opts.credentials = Some(Arc::new(Trying(Credential {
        username: username.clone(),
        password: password.clone(),
    })));
    let client = RegistryClient::new(opts).context("cannot set up the registry client")?;
    if let Err(e) = client.check_login(&registry).await {
        return Err(login_error(e, &registry, &username));
    }
    let outcome = credentials::login(
        &registry,
        &username,
        &password,
        &CredentialOptions::default(),
    )
    .await?;
    match &outcome {
        LoginOutcome::ConfigFile { .. } => eprintln!("warning: {outcome}"),
        LoginOutcome::Helper { .. } => eprintln!("{outcome}"),
    }
    eprintln!("Login succeeded: {registry}");
    Ok(Status::Success)
}

/// The error of a failed credentials check. A rejection names the user (a shell that
/// expanded the `$name` of a Harbor robot account's `robot$name` leaves just `robot`) and
/// does not advise running the `airlift login` that is running.
fn login_error(e: RegistryError, registry: &str, username: &str) -> anyhow::Error {
    let rejected =
        matches!(&e, RegistryError::Auth { kind, .. } if **kind == AuthFailure::Rejected);
    if !rejected {
        return e.into();
    }
    let shown: String = username.escape_debug().collect();
    let robot = if username.starts_with("robot") && !username.contains('$') {
        "; a Harbor robot account is named `robot$NAME` (or `robot$PROJECT+NAME`): in a shell, \
         quote it with single quotes (-u 'robot$NAME') so that `$NAME` is not expanded"
    } else {
        ""
    };
    anyhow::anyhow!(
        "{registry} rejected the credentials of user `{shown}`: check the user name and the \
         password{robot}"
    )
}

/// Runs `logout`.
pub async fn logout(args: LogoutArgs) -> Result<Status> {
    let LogoutArgs { registry } = args;
    if credentials::logout(&registry, &CredentialOptions::default()).await? {
        eprintln!("Removed login credentials for {registry}");
    } else {
        eprintln!("Not logged in to {registry}");
    }
    Ok(Status::Success)
}
