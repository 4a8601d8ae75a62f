"""The v2.5 "naive" custom assessor: a trial whose first result is odd is stopped at its 2nd
result; the stopped trials are written next to it."""
import logging
import os

from nni.assessor import Assessor, AssessResult

_logger = logging.getLogger('NaiveAssessor')
_logger.info('start')

_pwd = os.path.dirname(__file__)
_result = open(os.path.join(_pwd, 'assessor_result.txt'), 'w')


class NaiveAssessor(Assessor):
    def __init__(self, optimize_mode):
        self._killed = set()
        _logger.info('init')

    def assess_trial(self, trial_job_id, trial_history):
        _logger.info('assess trial %s %s', trial_job_id, trial_history)
        if trial_history[0] % 2 == 1 and len(trial_history) >= 2:
            if trial_job_id not in self._killed:
                self._killed.add(trial_job_id)
                _result.write('%s %d\n' % (trial_job_id, trial_history[0]))
                _result.flush()
            return AssessResult.Bad
        return AssessResult.Good

    def _on_exit(self):
        _result.close()

    def _on_error(self):
        _result.write('ERROR\n')
        _result.close()
