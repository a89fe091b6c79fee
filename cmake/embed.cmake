# embed.cmake: writes the bytes of IN as a C array (shelf__openapi_yaml) to OUT.
# Usage: cmake -DIN=file -DOUT=file.c -P embed.cmake
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n2)
math(EXPR n "${n2} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT} "/* generated from ${IN} by cmake/embed.cmake: do not edit */\n#include <stddef.h>\n"
  "const char shelf__openapi_yaml[] = {${body} 0};\nconst size_t shelf__openapi_yaml_len = ${n};\n")
