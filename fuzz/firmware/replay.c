/* Runs the frame parser target on each file named on the command line, without libFuzzer:
 * the corpus replay of `make test`, built with gcc and its sanitizers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; ++i) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 2;
        }
        static uint8_t data[1 << 20];
        const size_t size = fread(data, 1, sizeof data, f);
        fclose(f);
        LLVMFuzzerTestOneInput(data, size);
    }
    printf("%d inputs replayed\n", argc - 1);
    return 0;
}
