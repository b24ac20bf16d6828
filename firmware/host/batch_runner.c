/* Host batch runner: reads raw samples from stdin, each one all model inputs laid
 * end to end in index order, and writes each sample's outputs, laid end to end,
 * to stdout. Used for bit-exactness checks against the TFLite Micro reference
 * interpreter on the build machine.
 */
#include <stdio.h>
#include <string.h>

#include "model.h"

int main(void)
{
    static int8_t sample[MODEL_ALL_INPUTS_SIZE];
    for (;;) {
        const size_t got = fread(sample, 1, sizeof sample, stdin);
        if (got == 0) {
            return 0;
        }
        if (got != sizeof sample) {
            fprintf(stderr, "short sample: %zu of %d bytes\n", got, MODEL_ALL_INPUTS_SIZE);
            return 1;
        }
        size_t at = 0;
        for (int32_t i = 0; i < MODEL_NUM_INPUTS; ++i) {
            memcpy(model_input(i), sample + at, (size_t)model_inputs[i].size);
            at += (size_t)model_inputs[i].size;
        }
        model_invoke();
        for (int32_t i = 0; i < MODEL_NUM_OUTPUTS; ++i) {
            const size_t size = (size_t)model_outputs[i].size;
            if (fwrite(model_output(i), 1, size, stdout) != size) {
                return 1;
            }
        }
    }
}
