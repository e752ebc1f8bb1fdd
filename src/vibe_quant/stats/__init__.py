"""Pure statistics: performance figures from an equity curve (:mod:`.performance`), the Sharpe
ratio's overfitting corrections (:mod:`.sharpe`: PSR, DSR, MinTRL) and the probability of
backtest overfitting (:mod:`.pbo`: CSCV). Arrays in, numbers out: no I/O, no logging, no globals."""
