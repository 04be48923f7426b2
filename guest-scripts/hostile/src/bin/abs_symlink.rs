//! Follow absolute symlinks planted in the rootfs: `/etc_link -> /etc`, `/secret_link -> <host secret>`.
fn main() {
    hostile::try_list("/etc_link");
    hostile::try_read("/etc_link/passwd");
    hostile::try_read("/etc_link/hostname");
    hostile::try_read("/secret_link");
    hostile::try_write("/secret_link");
}
