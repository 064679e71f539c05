//! Finding the engine and asking it what it is and what it has.

use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;

use crate::error::SandboxError;
use crate::outcome::CgroupLimit;

use super::EngineInfo;

/// Where the engine listens when `DOCKER_HOST` is not set.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// How long one request may wait for the engine's response headers. Long jobs are not bound
/// by it: `wait` and `attach` answer with their headers at once and stream afterwards.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// The image label listing host paths the backend binds read-only at the same place (the
/// `host` image is a skeleton whose toolchains come from the host, as in the native jail).
pub const MIRROR_LABEL: &str = "sandbox.mirror";

/// The engine `DOCKER_HOST` names, or the local socket.
pub fn endpoint() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
}

/// Whether the engine runs on this host, so that its containers' processes and cgroups are
/// ours to see. A unix socket is (an ssh-forwarded one would fool us; `host` double-checks a
/// container's pid against its cgroup before trusting it).
pub fn is_local(endpoint: &str) -> bool {
    endpoint.starts_with("unix://")
}

/// Connects to the engine (`DOCKER_HOST`, or the local socket) and negotiates the API version:
/// bollard speaks a newer one than many engines (20.10 has 1.41). Fails with a message that
/// says what to run when no engine answers within `timeout`.
pub async fn connect(timeout: Duration) -> Result<Docker, SandboxError> {
    let endpoint = endpoint();
    connect_to(&endpoint, timeout).await.map_err(|reason| {
        // A DOCKER_HOST we cannot speak to stays wrong on retry; an engine that did not answer
        // may answer next time.
        if supported(&endpoint) {
            SandboxError::EngineUnavailable(format!(
                "refusing to run: docker is required but {reason}"
            ))
        } else {
            SandboxError::Refused {
                feature: "docker".into(),
                reason,
            }
        }
    })
}

/// The endpoint schemes the client speaks.
fn supported(endpoint: &str) -> bool {
    ["unix://", "tcp://", "http://"]
        .iter()
        .any(|scheme| endpoint.starts_with(scheme))
}

async fn connect_to(endpoint: &str, timeout: Duration) -> Result<Docker, String> {
    let version = bollard::API_DEFAULT_VERSION;
    let client = if endpoint.starts_with("unix://") {
        Docker::connect_with_unix(endpoint, REQUEST_TIMEOUT_SECS, version)
    } else if supported(endpoint) {
        Docker::connect_with_http(endpoint, REQUEST_TIMEOUT_SECS, version)
    } else {
        return Err(format!(
            "DOCKER_HOST={endpoint} is not supported: use unix:///path/to/docker.sock or \
             tcp://HOST:PORT"
        ));
    };
    let no_engine = |cause: String| {
        format!(
            "no Docker engine answered at {endpoint} within {} ({cause}): run scripts/setup \
             (installs and starts dockerd)",
            human(timeout)
        )
    };
    let client = client.map_err(|error| no_engine(describe(&error)))?;
    match tokio::time::timeout(timeout, client.negotiate_version()).await {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(error)) => Err(no_engine(describe(&error))),
        Err(_) => Err(no_engine("no answer".into())),
    }
}

/// What the backend needs to know of the engine for a job.
#[derive(Debug, Clone, Default)]
pub struct EngineFacts {
    pub version: String,
    pub api_version: String,
    pub storage_driver: String,
    /// `v1` or `v2`; `None` when the engine does not say.
    pub cgroup: Option<String>,
    /// The name of the engine's init binary (`docker-init`).
    pub init_binary: Option<String>,
    /// The engine remaps container uids into a user namespace (`userns-remap`).
    pub user_namespace: bool,
    /// Limits the engine says it cannot enforce (`docker info`: MemoryLimit, CpuCfsQuota,
    /// PidsLimit false); it would drop them with a warning.
    pub unsupported_limits: Vec<CgroupLimit>,
    /// The engine cannot limit swap (SwapLimit false): the memory limit caps RAM only.
    pub swap_unlimited: bool,
}

pub async fn facts(docker: &Docker) -> Result<EngineFacts, bollard::errors::Error> {
    let info = docker.info().await?;
    Ok(EngineFacts {
        version: info.server_version.unwrap_or_default(),
        api_version: docker.client_version().to_string(),
        storage_driver: info.driver.unwrap_or_default(),
        cgroup: info
            .cgroup_version
            .map(|version| format!("v{version}"))
            .filter(|version| version != "v"),
        init_binary: info.init_binary.filter(|name| !name.is_empty()),
        user_namespace: info
            .security_options
            .unwrap_or_default()
            .iter()
            .any(|option| option.split(',').any(|part| part == "name=userns")),
        // An engine that does not say is taken at its word of old: it enforces them.
        unsupported_limits: [
            (CgroupLimit::Memory, info.memory_limit),
            (CgroupLimit::Cpus, info.cpu_cfs_quota),
            (CgroupLimit::Pids, info.pids_limit),
        ]
        .into_iter()
        .filter(|(_, supported)| *supported == Some(false))
        .map(|(limit, _)| limit)
        .collect(),
        swap_unlimited: info.swap_limit == Some(false),
    })
}

/// What the backend needs to know of the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// The image's content-addressed id (`sha256:...`): what a tag names today.
    pub id: String,
    /// Host paths to bind read-only at the same place (label `sandbox.mirror`).
    pub mirrors: Vec<PathBuf>,
}

/// The image's facts, `None` when the engine does not have it.
pub async fn image(docker: &Docker, image: &str) -> Result<Option<ImageFacts>, String> {
    match docker.inspect_image(image).await {
        Ok(inspect) => {
            let labels = inspect
                .config
                .and_then(|config| config.labels)
                .unwrap_or_default();
            let mirrors = match labels.get(MIRROR_LABEL) {
                Some(list) => parse_mirrors(list)
                    .map_err(|bad| format!("image {image}: label {MIRROR_LABEL}: {bad}"))?,
                None => Vec::new(),
            };
            Ok(Some(ImageFacts {
                id: inspect.id.unwrap_or_default(),
                mirrors,
            }))
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(error) => Err(format!(
            "the Docker engine could not inspect image {image}: {}",
            describe(&error)
        )),
    }
}

/// `/usr,/opt/tools` -> absolute paths. A relative or `..` path would bind something other
/// than what the label seems to say, so it is an error rather than skipped.
pub fn parse_mirrors(list: &str) -> Result<Vec<PathBuf>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let path = PathBuf::from(entry);
            let plain = path
                .components()
                .all(|c| !matches!(c, std::path::Component::ParentDir));
            if path.is_absolute() && plain && path != std::path::Path::new("/") {
                Ok(path)
            } else {
                Err(format!(
                    "`{entry}` is not an absolute path below / (write e.g. `/usr,/opt`)"
                ))
            }
        })
        .collect()
}

/// The message the user needs when the image is missing.
pub fn missing_image(image: &str) -> SandboxError {
    SandboxError::Refused {
        feature: "docker".into(),
        reason: format!(
            "image {image} not found on the engine at {}: run `sandbox image build`",
            endpoint()
        ),
    }
}

/// `sandbox doctor` and `auto`: the engine and whether it has `image`, all within `timeout`.
pub async fn engine_info(image: &str, timeout: Duration) -> Result<EngineInfo, String> {
    let endpoint = endpoint();
    let asked = async {
        let docker = connect_to(&endpoint, timeout).await?;
        let (facts, image_facts) = tokio::join!(facts(&docker), self::image(&docker, image));
        let facts = facts.map_err(|error| {
            format!(
                "the Docker engine at {endpoint} answered but not with its facts: {}",
                describe(&error)
            )
        })?;
        Ok(EngineInfo {
            endpoint: endpoint.clone(),
            version: facts.version,
            api_version: facts.api_version,
            storage_driver: facts.storage_driver,
            cgroup_version: facts.cgroup.unwrap_or_default(),
            image: image.to_owned(),
            image_present: image_facts.as_ref().is_ok_and(Option::is_some),
            image_id: image_facts?.map(|facts| facts.id),
        })
    };
    tokio::time::timeout(timeout, asked)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no Docker engine answered at {endpoint} within {}: run scripts/setup \
                 (installs and starts dockerd)",
                human(timeout)
            ))
        })
}

/// `500ms`, `10s`: how long we waited, as a person would write it.
fn human(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// An error with its causes, on one line: bollard's own messages ("error in the hyper legacy
/// client") say little without what is underneath.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_label_lists_absolute_paths() {
        assert_eq!(
            parse_mirrors("/usr, /opt/tools,").unwrap(),
            [PathBuf::from("/usr"), PathBuf::from("/opt/tools")]
        );
        assert!(parse_mirrors("").unwrap().is_empty());
        for bad in ["usr", "/usr/../etc", "/"] {
            assert!(parse_mirrors(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_unix_socket_is_local() {
        assert!(is_local("unix:///var/run/docker.sock"));
        assert!(!is_local("tcp://10.0.0.1:2375"));
    }
}
