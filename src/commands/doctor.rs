//! `sandbox doctor`: what this host can enforce.

use super::{print_json, print_text};
use crate::cli::OutputFormat;

pub fn run(output: OutputFormat) -> anyhow::Result<u8> {
    let report = sandbox_runtime::host::doctor();
    let tools = sandbox_gates::presets::tools();
    if output == OutputFormat::Json {
        let mut json = serde_json::to_value(&report)?;
        json["tools"] = serde_json::to_value(&tools)?;
        print_json(&json)?;
        return Ok(0);
    }
    let yes_no = |available: bool| if available { "yes" } else { "no " };
    let mut text = format!("kernel          {} (uid {})\n", report.kernel, report.uid);
    text.push_str(&format!(
        "landlock        {}\n",
        report
            .landlock_abi
            .map(|abi| format!("yes, ABI {abi}"))
            .unwrap_or_else(|| "no".into())
    ));
    text.push_str(&format!("seccomp         {}\n", yes_no(report.seccomp)));
    text.push_str(&format!(
        "cgroup          {} {}\n",
        yes_no(report.cgroup.available),
        report.cgroup.detail
    ));
    text.push_str(&format!(
        "user namespaces {} {}\n",
        yes_no(report.user_namespaces.available),
        report.user_namespaces.detail
    ));
    text.push_str(&format!("overlayfs       {}\n", yes_no(report.overlayfs)));
    text.push_str(&format!(
        "limits          enforced: {}; not enforced: {}\n                {}\n",
        report.limits.enforced.join(", "),
        if report.limits.unenforced.is_empty() {
            "none".to_owned()
        } else {
            report.limits.unenforced.join(", ")
        },
        report.limits.detail
    ));
    text.push_str(&format!(
        "idmapped mounts {} {}\n",
        yes_no(report.idmapped_mounts.available),
        report.idmapped_mounts.detail
    ));
    text.push_str(&format!(
        "docker          {} {}\n",
        yes_no(report.docker.available),
        report.docker.detail
    ));
    text.push_str("\nbuilt-in profiles on the native backend:\n");
    for profile in &report.profiles {
        let state = if profile.runnable {
            "runs".to_owned()
        } else {
            format!("refuses: {}", profile.missing.join("; "))
        };
        text.push_str(&format!("  {:<12} {state}\n", profile.name));
    }
    text.push_str("\ngate presets' tools (scripts/setup installs them in /opt/sandbox-tools):\n");
    for tool in &tools {
        text.push_str(&format!(
            "  {:<12} {} {}\n",
            tool.preset,
            yes_no(tool.present),
            tool.detail
        ));
    }
    print_text(&text)?;
    Ok(0)
}
