"""C++ ``main`` for cocotb-on-Verilator builds of the bulk harness: cocotb's own ``verilator.cpp`` loop (cocotb
2.1, BSD-3-Clause, adapted) plus an optional clock toggled by the loop itself.

With ``+HGQ_CLOCK=<half period>`` the loop inverts the top-level ``clk`` at every multiple of the half period, at
the start of that time step and before cocotb's timed callbacks (where an ``always #h clk = ~clk`` would fire).
Every edge is a full Verilator evaluation with all VPI callback phases, exactly as under cocotb's ``Clock``, but
without a Python call (``Clock``) or a ``--timing`` coroutine resume (``always #1``) per half period. cocotb
still starts the run, awaits ``done`` and reads the counters. Without the plusarg the loop is cocotb's.
"""

from __future__ import annotations

__all__ = ["MAIN_CPP"]

MAIN_CPP = r"""// hgq-hil: cocotb 2.1 verilator.cpp main loop (BSD-3-Clause) + a loop clock (+HGQ_CLOCK=<half>)
#include <cstdlib>
#include <cstring>
#include <memory>

#include "Vtop.h"
#include "verilated.h"
#include "verilated_vpi.h"

#if VM_TRACE
#include <verilated_vcd_c.h>
static VerilatedVcdC *tfp = nullptr;
#endif

static vluint64_t main_time = 0;

double sc_time_stamp() { return main_time; }

extern "C" {
void vlog_startup_routines_bootstrap(void);
}

static inline void settle_value_callbacks() {
    while (VerilatedVpi::callValueCbs()) {
    }
}

static void wrap_up() {
    VerilatedVpi::callCbs(cbEndOfSimulation);
#if VM_TRACE
    if (tfp) tfp->close();
#endif
}

int main(int argc, char **argv) {
    bool trace_on = false;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--trace") == 0) trace_on = true;
    }
    Verilated::commandArgs(argc, argv);
    vluint64_t half = 0;  // 0: no loop clock
    if (const char *m = Verilated::commandArgsPlusMatch("HGQ_CLOCK="); m && *m) {
        half = std::strtoull(m + std::strlen("+HGQ_CLOCK="), nullptr, 10);
    }
    std::unique_ptr<Vtop> top(new Vtop(""));
    Verilated::fatalOnVpiError(false);
#if VM_TRACE
    Verilated::traceEverOn(true);
    if (trace_on) {
        tfp = new VerilatedVcdC;
        top->trace(tfp, 99);
        tfp->open("dump.vcd");
    }
#else
    (void)trace_on;
#endif
    vlog_startup_routines_bootstrap();
    Verilated::addExitCb([](void *) { wrap_up(); }, nullptr);
    VerilatedVpi::callCbs(cbStartOfSimulation);
    settle_value_callbacks();

    const vluint64_t NONE = static_cast<vluint64_t>(~0ULL);
    while (!Verilated::gotFinish()) {
        do {
            do {
                top->eval_step();
                VerilatedVpi::clearEvalNeeded();
                VerilatedVpi::doInertialPuts();
                settle_value_callbacks();
            } while (VerilatedVpi::evalNeeded());
            VerilatedVpi::callCbs(cbReadWriteSynch);
            VerilatedVpi::doInertialPuts();
            settle_value_callbacks();
        } while (VerilatedVpi::evalNeeded());
        top->eval_end_step();
        VerilatedVpi::callCbs(cbReadOnlySynch);
#if VM_TRACE
        if (tfp) tfp->dump(main_time);
#endif
        vluint64_t next = VerilatedVpi::cbNextDeadline();
        if (top->eventsPending()) next = std::min(next, static_cast<vluint64_t>(top->nextTimeSlot()));
        const vluint64_t edge = half ? (main_time / half + 1) * half : NONE;
        next = std::min(next, edge);
        if (next == NONE) break;
        main_time = next;
        VerilatedVpi::callCbs(cbNextSimTime);
        settle_value_callbacks();
        if (next == edge) top->clk = !top->clk;
        VerilatedVpi::callTimedCbs();
        settle_value_callbacks();
    }
    top->final();
    wrap_up();
#if VM_TRACE
    delete tfp;
    tfp = nullptr;
#endif
    return Verilated::threadContextp()->errorCount() > 0 ? 1 : 0;
}
"""
