"""The v2.5 "naive" trial: the parameter is a plain int; reports x, 2x, ..., then 10x."""
import time

import nni

params = nni.get_next_parameter()
print("params:", params)
x = params
for i in range(1, 6):
    nni.report_intermediate_result(x * i)
    time.sleep(0.5)
nni.report_final_result(x * 10)
