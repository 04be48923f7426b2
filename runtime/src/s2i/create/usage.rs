//! usage: what `ws2i usage {{name}}:latest` prints.
fn main() {
    ws2i_sdk::usage(
        "This is the {{name}} builder. It installs a source tree at /opt/app-root/src.\n\
         \n\
         Sample invocation:\n\
         \n\
         ws2i build <source directory or git URL> {{name}}:latest <output image>",
    );
}
