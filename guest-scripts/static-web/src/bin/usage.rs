//! usage: how to use the static-web builder.
fn main() {
    ws2i_sdk::usage(
        "This is ws2i's static-web builder: it serves a directory of HTML, CSS, JS,\n\
         images and Markdown, like S2I's httpd builder.\n\
         \n\
         Build and run:\n\
         \n\
         \x20 ws2i build <source directory or git URL> ws2i/static-web <output image>\n\
         \x20 ws2i run <output image> -p 127.0.0.1:8080:8080\n\
         \n\
         assemble copies the site to /opt/app-root/web, renders *.md to *.html (template:\n\
         .s2i/template.html with {{title}} and {{content}}, or WEB_MARKDOWN_TEMPLATE),\n\
         writes .gz and .br variants of text assets and a manifest with content types\n\
         and ETags (/opt/app-root/etc/static-web/manifest.tsv). .s2iignore excludes files.\n\
         With --incremental, unchanged files reuse the previous build's compressed\n\
         variants (matched by content hash).\n\
         \n\
         run serves it over HTTP on port 8080 (a wasi:http component): content types,\n\
         strong ETags and If-None-Match, Last-Modified, gzip/brotli negotiation, Range,\n\
         index files for directories, 404.html (or a built-in page), GET and HEAD only,\n\
         no directory listings, nothing outside the web root.\n\
         \n\
         Environment (.s2i/environment or -e at build time; the run-time environment\n\
         overrides the first four):\n\
         \x20 WEB_INDEX=index.html          file served for a directory\n\
         \x20 WEB_SPA_FALLBACK=index.html   served for unknown routes (single-page apps)\n\
         \x20 WEB_CSP=...                   Content-Security-Policy (default: same origin only)\n\
         \x20 WEB_CACHE_CONTROL=no-cache    Cache-Control for files\n\
         \x20 WEB_PRECOMPRESS=1             0 turns off the .gz/.br variants\n\
         \x20 WEB_MARKDOWN_TEMPLATE=path    the Markdown page template, in the source",
    );
}
