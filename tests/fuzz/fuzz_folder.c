/* fuzz_folder.c — what the image-folder walker does with the names it
 * reads (cnn_folder_from_listing: one entry a line, "class" for a folder,
 * "class/name" for a file): class-name checks, extension matching,
 * sorting, the empty-class and too-many-classes checks. */
#include "fuzz_common.h"
#include "io/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cnn_folder f;
    cnn_status s = cnn_folder_from_listing((const char *)data, size, "root", &f);
    if (s) {
        fuzz_check_failure(s, "root");
        return 0;
    }
    if (f.nclasses < 1 || f.nclasses > CNN_MAX_CLASSES || f.nfiles < f.nclasses)
        fuzz_die("a listing of bad counts was accepted");
    for (int k = 0; k < f.nclasses; k++) {
        if (cnn_class_name_problem(f.classes[k], strlen(f.classes[k]))) fuzz_die("a bad class name");
        if (k && strcmp(f.classes[k - 1], f.classes[k]) >= 0) fuzz_die("classes not in byte order");
    }
    int *seen = calloc((size_t)f.nclasses, sizeof *seen);
    if (!seen) fuzz_die("out of memory");
    for (int i = 0; i < f.nfiles; i++) {
        if (f.labels[i] >= f.nclasses) fuzz_die("a label past the classes");
        if (i && f.labels[i] < f.labels[i - 1]) fuzz_die("files not in class order");
        const char *slash = strchr(f.files[i], '/');
        if (!slash || !cnn_folder_is_image_name(slash + 1)) fuzz_die("a file that is not a picture");
        if (strncmp(f.files[i], f.classes[f.labels[i]], (size_t)(slash - f.files[i])) != 0)
            fuzz_die("a file listed under another class");
        seen[f.labels[i]]++;
    }
    for (int k = 0; k < f.nclasses; k++)
        if (!seen[k]) fuzz_die("an empty class was accepted");
    free(seen);
    cnn_folder_free(&f);
    return 0;
}
