/* Reference MAXIMUM and MINIMUM, int8, with 4-D broadcast: raw codes compared,
 * never rescaled, as TFLM does. Ties give the same code either way. */
#include "tp_elementwise.h"

static int8_t larger_one(const void *unused, int8_t a, int8_t b)
{
    (void)unused;
    return a > b ? a : b;
}

static int8_t smaller_one(const void *unused, int8_t a, int8_t b)
{
    (void)unused;
    return a < b ? a : b;
}

void tp_maximum_s8(const tp_broadcast *shape, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    TP_BROADCAST_EACH(shape, input1, input2, output, larger_one, NULL);
}

void tp_minimum_s8(const tp_broadcast *shape, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    TP_BROADCAST_EACH(shape, input1, input2, output, smaller_one, NULL);
}
