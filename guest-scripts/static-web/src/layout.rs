//! Where things live in a static-web image.

/// The web root: everything served comes from here.
pub const WEB_ROOT: &str = "/opt/app-root/web";

/// The builder's own data, outside the web root so that it is never served.
pub const ETC: &str = "/opt/app-root/etc/static-web";

/// Per-file metadata records, mirroring the web root's tree.
pub const META_DIR: &str = "/opt/app-root/etc/static-web/meta";

/// The manifest of every served file (tab-separated, with a header line).
pub const MANIFEST: &str = "/opt/app-root/etc/static-web/manifest.tsv";

/// `KEY=VALUE` settings recorded by assemble for the run hook.
pub const CONFIG: &str = "/opt/app-root/etc/static-web/config";

/// The version of the compressed-artifact layout (`v2-gz6-brsize/gz/<sha256>`, the
/// rest of the name being the compression policy): bump it when the compressors change
/// so that old outputs are not reused.
pub const ARTIFACTS_VERSION: &str = "v2";
