/* text.c — whether bytes from outside (file names, metadata) are text a
 * terminal may print. */
#include "internal.h"

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) without control characters (C0, DEL, C1), which a terminal
 * would act on. */
const char *cnn_text_problem(const char *text, size_t len)
{
    static const unsigned least[4] = {0, 0x80, 0x800, 0x10000};
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        const unsigned c = s[i];
        const int more = c < 0x80 ? 0 : c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : -1;
        if (more < 0 || c > 0xf4 || (size_t)more >= len - i) return "is not UTF-8 text";
        unsigned cp = more ? c & (0x3fu >> more) : c;
        for (int j = 1; j <= more; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return "is not UTF-8 text";
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < least[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return "is not UTF-8 text";
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) return "holds a control character";
        i += (size_t)more + 1;
    }
    return NULL;
}
