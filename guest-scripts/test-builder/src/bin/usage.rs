//! usage: how to use the test builder.
fn main() {
    ws2i_sdk::usage(
        "This is the ws2i test builder. It installs a source tree at /opt/app-root/src.\n\
         \n\
         Sample invocation:\n\
         \n\
         ws2i build <source directory or git URL> ws2i/test-builder <output image>\n\
         \n\
         Environment: TEST_PRINT_ENV=\"A B\" prints those variables during assemble.",
    );
}
