// consumer: sums 1..100 through a channel; exits 0 when the sum is right.
#include <mpg/mpg.hpp>

int main() {
  return mpg::run([] {
    mpg::Chan<int> ch(8);
    mpg::go([ch]() mutable {
      for (int i = 1; i <= 100; i++) ch.send(i);
      ch.close();
    });
    int sum = 0;
    for (int v : ch) sum += v;
    return sum == 5050 ? 0 : 1;
  });
}
