//! The two sides of an image copy. Every transport (the store and `oci:` layouts, archives, a
//! registry) implements them; [`super::transport::copy`] moves an image between any two. The
//! registry client implements them without knowing the transports that dispatch to it.

use std::io::Read;

use anyhow::{Context, Result};

use super::{Descriptor, ManifestFormat};
use crate::Digest;

/// Where an image is read from.
pub trait ImageSource {
    /// The top-level manifest (`None`) or the manifest with that digest, with its media type.
    fn manifest(&mut self, digest: Option<&Digest>) -> Result<(Vec<u8>, String)>;
    /// A blob's content; the destination verifies it against `desc.digest`.
    fn blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + Send>>;
}

/// Where an image is written to. Blobs first, the manifest last, then `commit`.
pub trait ImageDestination {
    fn has_blob(&mut self, desc: &Descriptor) -> Result<bool>;
    /// Must verify `reader` against `desc.digest` and store nothing on mismatch.
    fn put_blob(&mut self, desc: &Descriptor, reader: &mut dyn Read) -> Result<()>;
    fn put_manifest(&mut self, bytes: &[u8], media_type: &str) -> Result<()>;
    /// Stores a manifest that an index being copied lists, by its digest and unnamed; the index
    /// itself comes last through [`Self::put_manifest`]. Destinations that hold a single image
    /// (a docker-archive) refuse it.
    fn put_child_manifest(&mut self, _bytes: &[u8], _media_type: &str, _digest: &Digest) -> Result<()> {
        anyhow::bail!("this destination holds a single image, not an image index: pick one platform (--platform) instead of --all")
    }
    /// Makes a missing blob present without uploading it, by linking it from
    /// one of `from` (`REGISTRY/REPOSITORY` names); returns the repository it
    /// came from. Best effort: `None` means "upload it", never an error.
    fn mount_blob(&mut self, _desc: &Descriptor, _from: &[String]) -> Option<String> {
        None
    }
    /// Writes several blobs; destinations that can upload concurrently override this.
    fn put_blobs(&mut self, blobs: Vec<(Descriptor, Box<dyn Read + Send>)>) -> Result<()> {
        for (desc, mut r) in blobs {
            self.put_blob(&desc, &mut r)
                .with_context(|| format!("writing blob {}", desc.digest))?;
        }
        Ok(())
    }
    /// Manifest formats this destination can hold, preferred first.
    fn supported_formats(&self) -> &'static [ManifestFormat] {
        &[ManifestFormat::Oci, ManifestFormat::Docker]
    }
    fn commit(self: Box<Self>) -> Result<()>;
}
