/* The `host` board: the firmware as a native program on the build machine.
 *
 * Transport: stdin (requests) and stdout (replies), raw bytes. Clock:
 * CLOCK_MONOTONIC in nanoseconds. Faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE)
 * are reported with the same FAULT frame as a Cortex-M HardFault: pc is the
 * faulting instruction where the platform exposes it, bfar the faulting
 * address, cfsr the signal number. The process then exits with status 3.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "board.h"
#include "protocol.h"

static uint8_t out_buf[4096];
static size_t out_len;

static void write_all(const uint8_t *p, size_t n)
{
    while (n > 0) {
        const ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            _exit(1); /* host went away */
        }
        p += w;
        n -= (size_t)w;
    }
}

void board_uart_flush(void)
{
    write_all(out_buf, out_len);
    out_len = 0;
}

void board_uart_putc(uint8_t byte)
{
    if (out_len == sizeof out_buf) {
        board_uart_flush();
    }
    out_buf[out_len++] = byte;
}

int board_uart_getc(uint32_t timeout_ms)
{
    static uint8_t in_buf[4096];
    static size_t in_len, in_pos;
    if (in_pos == in_len) {
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        int ready;
        do {
            ready = poll(&pfd, 1, timeout_ms == 0u ? -1 : (int)timeout_ms);
        } while (ready < 0 && errno == EINTR);
        if (ready == 0) {
            return -1;
        }
        ssize_t got;
        do {
            got = read(STDIN_FILENO, in_buf, sizeof in_buf);
        } while (got < 0 && errno == EINTR);
        if (got <= 0) {
            exit(0); /* host closed the link: done */
        }
        in_len = (size_t)got;
        in_pos = 0;
    }
    return in_buf[in_pos++];
}

uint32_t board_ticks(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

static void on_fault(int sig, siginfo_t *info, void *context)
{
    uint32_t pc = 0;
#if defined(__x86_64__) && defined(REG_RIP)
    pc = (uint32_t)((const ucontext_t *)context)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    pc = (uint32_t)((const ucontext_t *)context)->uc_mcontext.pc;
#else
    (void)context;
#endif
    const uint32_t addr = (uint32_t)(uintptr_t)info->si_addr;
    const uint32_t regs[7] = {pc, 0, 0, (uint32_t)sig, 0, addr, addr};
    out_len = 0; /* drop any partial reply */
    protocol_send_fault(regs);
    _exit(3);
}

void board_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    const int signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; ++i) {
        sigaction(signals[i], &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
}

uint32_t board_clock_hz(void)
{
    return 1000000000u; /* tick rate: nanoseconds */
}

uint8_t board_tick_unit(void)
{
    return (uint8_t)TP_TICK_NANOSECONDS;
}

const char *board_name(void)
{
    return "host";
}

uintptr_t board_fault_address(void)
{
    return (uintptr_t)16u; /* in the never-mapped first page */
}
