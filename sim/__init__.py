"""cocotb hardware-in-the-loop verification of generated designs on Verilator and Icarus."""
