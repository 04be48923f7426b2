//! `--callback-url`: the outcome of a build, success or failure, POSTed as
//! `{"success":bool,"labels":{…}}`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::s2i::{BuildLog, BuildResult};

/// How long `--callback-url` may take, connection included; a slow receiver cannot hold the build.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to report, checked before the build starts so that a bad URL costs no build.
pub(crate) struct Callback(Option<reqwest::Url>);

impl Callback {
    pub(crate) fn parse(url: Option<&str>) -> Result<Self> {
        Ok(Callback(url.map(parse_callback_url).transpose()?))
    }

    /// Reports `result`; a receiver that is down is only a warning, the build's outcome stands.
    pub(crate) fn report<E>(&self, result: &Result<BuildResult, E>, log: &dyn BuildLog) {
        let Some(url) = &self.0 else { return };
        let labels = match result {
            Ok(r) => r.labels.clone(),
            Err(_) => BTreeMap::new(),
        };
        let body = serde_json::json!({ "success": result.is_ok(), "labels": labels });
        if let Err(e) = post_callback(url, &body) {
            log.warning(&format!("callback to {url} failed: {e:#}"));
        }
    }
}

/// `--callback-url`: http or https only, checked before the build starts.
pub fn parse_callback_url(u: &str) -> Result<reqwest::Url> {
    let url = reqwest::Url::parse(u).with_context(|| format!("--callback-url {u:?}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        anyhow::bail!("--callback-url {u:?}: expected an http:// or https:// URL");
    }
    Ok(url)
}

fn post_callback(url: &reqwest::Url, body: &serde_json::Value) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(CALLBACK_TIMEOUT)
            .connect_timeout(CALLBACK_TIMEOUT)
            .build()?;
        let resp = client
            .post(url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body)?)
            .send()
            .await?;
        if !resp.status().is_success() {
            anyhow::bail!("HTTP {}", resp.status());
        }
        Ok(())
    })
}

