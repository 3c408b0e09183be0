/*
 * insn_count: a QEMU TCG plugin (QEMU 7.2, plugin API version 1) that counts
 * the guest instructions the board job executes per fine-tuning step.
 *
 * The board job (boards/app) calls `board_app::insn_mark_step` at the start
 * of every optimizer step and `board_app::insn_mark_done` after the last one.
 * The plugin counts executed instructions per vCPU (a callback per executed
 * translation block adds its instruction count), notes the count of the vCPU
 * that enters a marker, and at exit prints, per fine-tune (a run of step
 * marks closed by a done mark), the steps, the instructions between the
 * first step mark and the done mark, and their quotient; and the instructions
 * of the whole run. Output goes to QEMU's log: run QEMU with `-d plugin`.
 *
 * Built by boards/insn-count/build.sh; used by .ci/run (boards' steps):
 *   qemu-system-arm ... -plugin libinsn_count.so -d plugin -kernel FIRMWARE
 *
 * The declarations below are the subset of QEMU's include/qemu/qemu-plugin.h
 * (version 1, as Debian 12's QEMU 7.2 exports it) this plugin calls; Debian
 * ships neither the header nor the example plugins.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const char *qemu_plugin_insn_symbol(const struct qemu_plugin_insn *insn);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define MAX_VCPUS 8
#define MAX_RUNS 8

/* Instructions executed by each vCPU (each vCPU thread writes only its own). */
static uint64_t executed[MAX_VCPUS];

/* One fine-tune: its step marks and the instruction counts at its first step
 * mark and at its done mark (all on the vCPU that runs the job). */
struct run {
    uint64_t steps, first, done;
};
static struct run runs[MAX_RUNS];
static int n_runs;
static int open_run; /* 1 while step marks arrive without a done mark */
static int overflow;

enum mark { MARK_STEP = 1, MARK_DONE = 2 };

static void on_tb(unsigned int vcpu, void *n_insns)
{
    if (vcpu < MAX_VCPUS) {
        executed[vcpu] += (uint64_t)(uintptr_t)n_insns;
    }
}

static void on_mark(unsigned int vcpu, void *kind)
{
    uint64_t now = vcpu < MAX_VCPUS ? executed[vcpu] : 0;
    if ((uintptr_t)kind == MARK_STEP) {
        if (!open_run) {
            if (n_runs == MAX_RUNS) {
                overflow = 1;
                return;
            }
            runs[n_runs] = (struct run){0, now, now};
            n_runs++;
            open_run = 1;
        }
        runs[n_runs - 1].steps++;
    } else if (open_run) {
        runs[n_runs - 1].done = now;
        open_run = 0;
    }
}

/* The marker a translation block starts in, if any: a marker function is a
 * leaf without branches, so a block starting inside it starts at its entry. */
static uintptr_t marker(struct qemu_plugin_insn *insn)
{
    const char *sym = qemu_plugin_insn_symbol(insn);
    if (sym == NULL) {
        return 0;
    }
    if (strstr(sym, "insn_mark_step") != NULL) {
        return MARK_STEP;
    }
    if (strstr(sym, "insn_mark_done") != NULL) {
        return MARK_DONE;
    }
    return 0;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    /* The block's count is added when it starts executing, before the
     * marker callback of its first instruction. */
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
    if (n > 0) {
        struct qemu_plugin_insn *first = qemu_plugin_tb_get_insn(tb, 0);
        uintptr_t kind = marker(first);
        if (kind != 0) {
            qemu_plugin_register_vcpu_insn_exec_cb(first, on_mark, QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)kind);
        }
    }
}

static void report(qemu_plugin_id_t id, void *userdata)
{
    char line[256];
    uint64_t total = 0;
    (void)id;
    (void)userdata;
    for (int v = 0; v < MAX_VCPUS; v++) {
        total += executed[v];
    }
    for (int r = 0; r < n_runs; r++) {
        const struct run *run = &runs[r];
        if (run->steps == 0 || run->done < run->first) {
            snprintf(line, sizeof line, "insn-count: fine-tune %d: no done mark\n", r + 1);
        } else {
            uint64_t d = run->done - run->first;
            snprintf(line, sizeof line,
                     "insn-count: fine-tune %d: %" PRIu64 " steps, %" PRIu64
                     " instructions, %" PRIu64 " instructions/step\n",
                     r + 1, run->steps, d, (d + run->steps / 2) / run->steps);
        }
        qemu_plugin_outs(line);
    }
    snprintf(line, sizeof line, "insn-count: %d fine-tune(s)%s; whole run %" PRIu64 " instructions\n",
             n_runs, overflow ? " (more not counted)" : "", total);
    qemu_plugin_outs(line);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info, int argc,
                                                               char **argv)
{
    (void)info;
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "insn_count: takes no arguments\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, report, NULL);
    return 0;
}
