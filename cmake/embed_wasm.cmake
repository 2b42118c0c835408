# Run at build time (cmake -P): the WebAssembly module IN as a C array in
# OUT, for `cnn report` to embed in its pages.
#   cmake -DIN=cnn_live.wasm -DOUT=live_wasm.c -P embed_wasm.cmake
file(READ ${IN} _hex HEX)
string(LENGTH "${_hex}" _len)
math(EXPR _bytes "${_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _body "${_hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" _body "${_body}")
file(WRITE ${OUT}.new "/* generated from the WebAssembly module by cmake/embed_wasm.cmake */\n#include <stddef.h>\n"
     "const unsigned char cli_live_wasm[] = {\n${_body}0};\n"
     "const size_t cli_live_wasm_size = ${_bytes};\n"
     "const char cli_live_wasm_why[] = \"\";\n")
file(RENAME ${OUT}.new ${OUT})
