"""Board and part definitions, vendor build plans and open-source FPGA builds."""
