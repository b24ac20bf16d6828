/* Host batch runner: reads raw int8 inputs from stdin, one model input per
 * sample, and writes the raw int8 outputs to stdout. Used for bit-exactness
 * checks against the TFLite Micro reference interpreter on the build machine.
 */
#include <stdio.h>
#include <string.h>

#include "model.h"

int main(void)
{
    static int8_t sample[MODEL_INPUT_SIZE];
    for (;;) {
        const size_t got = fread(sample, 1, sizeof sample, stdin);
        if (got == 0) {
            return 0;
        }
        if (got != sizeof sample) {
            fprintf(stderr, "short sample: %zu of %d bytes\n", got, MODEL_INPUT_SIZE);
            return 1;
        }
        memcpy(model_input(0), sample, sizeof sample);
        model_invoke();
        if (fwrite(model_output(0), 1, MODEL_OUTPUT_SIZE, stdout) != MODEL_OUTPUT_SIZE) {
            return 1;
        }
    }
}
