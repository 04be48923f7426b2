//! A real registry (Debian `docker-registry`) on a free loopback port, with a
//! temp storage dir and optional htpasswd (bcrypt) auth. Stopped on drop;
//! every wait is bounded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub struct Registry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    auth: Option<(String, String)>,
}

impl Registry {
    /// An open registry.
    pub fn start() -> Result<Self> {
        Self::launch(None)
    }

    /// A registry requiring `user`/`pass` (htpasswd -Bbn).
    pub fn start_with_auth(user: &str, pass: &str) -> Result<Self> {
        Self::launch(Some((user.to_string(), pass.to_string())))
    }

    fn launch(auth: Option<(String, String)>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut r = Registry {
            child: None,
            dir,
            port,
            auth,
        };
        r.write_config()?;
        r.restart()?;
        Ok(r)
    }

    fn write_config(&self) -> Result<()> {
        let storage = self.storage_dir();
        std::fs::create_dir_all(&storage)?;
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\n",
            storage.display(),
            self.port
        );
        if let Some((u, p)) = &self.auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .context("running htpasswd (apache2-utils)")?;
            if !out.status.success() {
                bail!("htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            let file = self.dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout)?;
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: ws2i-test\n    path: {}\n",
                file.display()
            ));
        }
        std::fs::write(self.dir.path().join("config.yml"), cfg)?;
        Ok(())
    }

    /// (Re)starts the registry process on the same port and storage.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry (install it with scripts/setup)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.ping().is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        bail!(
            "docker-registry did not answer on port {} within 20s",
            self.port
        )
    }

    fn ping(&self) -> Result<()> {
        let mut s = TcpStream::connect_timeout(
            &([127, 0, 0, 1], self.port).into(),
            Duration::from_secs(1),
        )?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf)?;
        if buf.starts_with(b"HTTP/1.") {
            Ok(())
        } else {
            bail!("not HTTP")
        }
    }

    /// Kills the registry (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Path of a blob's data file in the registry's storage.
    pub fn blob_data_path(&self, digest_hex: &str) -> PathBuf {
        blob_data(&self.storage_dir(), digest_hex)
    }
}

fn blob_data(storage: &Path, hex: &str) -> PathBuf {
    storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Tiny test images: one gzip layer holding `files`, written into `store`.
pub mod fixtures {
    use anyhow::Result;
    use ws2i::image::{media, ImageBuilder, NewLayer, Platform};
    use ws2i::image::store::Store;
    use ws2i::Digest;

    /// Returns (manifest digest, layer digest).
    pub fn make_image(
        store: &Store,
        name: &str,
        files: &[(&str, &[u8])],
    ) -> Result<(Digest, Digest)> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, path, *data)?;
        }
        let tar = tar.into_inner()?;
        let diff_id = Digest::of(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar)?;
        let gz = gz.finish()?;
        let (digest, size) = store.put_blob(&mut &gz[..], None)?;
        let mut b = ImageBuilder::scratch(&Platform::host_default());
        b.add_layer(NewLayer {
            diff_id,
            digest: digest.clone(),
            size,
            media_type: media::OCI_LAYER_GZIP.into(),
            created_by: "test".into(),
        })?
        .label("io.ws2i.test", name)
        .set("Cmd", serde_json::json!(["/hello"]));
        let (cfg, m) = b.finish()?;
        Ok((store.commit_image(&cfg, &m, &name.parse()?)?, digest))
    }
}
