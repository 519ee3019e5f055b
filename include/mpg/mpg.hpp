// mpg.hpp: everything: the runtime, channels and select, sync, timers.
#pragma once
#include "mpg/chan.hpp"
#include "mpg/condvar.hpp"
#include "mpg/config.hpp"
#include "mpg/errors.hpp"
#include "mpg/mutex.hpp"
#include "mpg/once.hpp"
#include "mpg/runtime.hpp"
#include "mpg/select.hpp"
#include "mpg/semaphore.hpp"
#include "mpg/time.hpp"
#include "mpg/waitgroup.hpp"
