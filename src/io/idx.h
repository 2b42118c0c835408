/*
 * idx.h — finding the IDX files of a data set in a directory (for the CLI).
 */
#ifndef CNN_IO_IDX_H
#define CNN_IO_IDX_H

#include "cnn.h"

/* Load the training (test == 0) or test (test != 0) split of an IDX data set
 * kept in `dir`. Accepts the names the common mirrors use:
 *   train-images-idx3-ubyte, train-labels-idx1-ubyte   (t10k-... for test)
 *   the same with ".gz", and the dotted variant train-images.idx3-ubyte[.gz].
 * On failure the message lists every name that was looked for. */
cnn_status cnn_dataset_open_dir(const char *dir, int test, cnn_dataset *out);

#endif
